// Display helpers. Token amounts arrive as exact decimal strings ("1999.9") and money as
// integer cents: both are shown by rearranging digits, never by float arithmetic.

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "6500" -> "6,500", "-1999.9" -> "-1,999.9". A string in no decimal form is shown as is. */
export function formatTokens(amount: string): string {
  const match = DECIMAL.exec(amount.trim());
  if (!match) return amount;
  const [, sign = "", whole = "0", fraction] = match;
  const shownSign = sign && /[1-9]/.test(whole + (fraction ?? "")) ? "-" : "";
  return shownSign + groupThousands(whole) + (fraction ? `.${fraction}` : "");
}

/** A ledger amount with its sign: "+6,500", "-100", "0". */
export function formatSignedTokens(amount: string): string {
  const shown = formatTokens(amount);
  if (shown.startsWith("-") || !/[1-9]/.test(shown)) return shown;
  return `+${shown}`;
}

const SYMBOLS: Record<string, string> = { usd: "$", eur: "€", gbp: "£" };

/** Integer cents as a price: 4900 -> "$49", 4950 -> "$49.50", 123456 -> "$1,234.56". */
export function formatPrice(cents: number, currency: string): string {
  if (!Number.isSafeInteger(cents)) return "—";
  const negative = cents < 0;
  const digits = String(Math.abs(cents)).padStart(3, "0");
  const whole = groupThousands(digits.slice(0, -2));
  const fraction = digits.slice(-2);
  const symbol = SYMBOLS[currency.toLowerCase()];
  const number = fraction === "00" ? whole : `${whole}.${fraction}`;
  const shown = symbol ? `${symbol}${number}` : `${number} ${currency.toUpperCase()}`;
  return negative ? `-${shown}` : shown;
}

const ACTION_LABELS: Record<string, string> = {
  vm_runtime: "VM runtime",
  screenshot: "Screenshots",
  api_call: "API calls",
  ai_message: "AI messages",
  file_upload: "File uploads",
};

/** "vm_runtime" -> "VM runtime"; unknown actions read as words. */
export function actionLabel(action: string): string {
  const known = ACTION_LABELS[action];
  if (known) return known;
  const words = action.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const KIND_LABELS: Record<string, string> = {
  purchase: "Purchase",
  grant: "Grant",
  usage: "Usage",
  clawback: "Refund clawback",
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? actionLabel(kind);
}

const ORDER_STATUS_LABELS: Record<string, string> = {
  pending: "Not paid yet",
  paid: "Paid",
  failed: "Payment failed",
  expired: "Expired",
  flagged: "Under review",
};

export function orderStatusLabel(status: string): string {
  return ORDER_STATUS_LABELS[status] ?? actionLabel(status);
}

/** An ISO 8601 time in the reader's locale; the raw text when it does not parse. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString(undefined, { dateStyle: "medium" });
}

/** What the API's estimated hours assume (its rule: tokens / 100): the platform's typical
 * mix of VM time, screenshots and AI messages, not a VM alone (60 tokens an hour). */
export const ESTIMATE_ASSUMPTION =
  "Hours assume about 100 tokens an hour of typical use (a VM with its screenshots, API " +
  "calls and AI messages); a VM alone uses 60 tokens an hour.";

/** "1 hour", "65 hours". */
export function formatHours(hours: number): string {
  return `${groupThousands(String(hours))} ${hours === 1 ? "hour" : "hours"}`;
}

/** The share of `part` in `whole` as a CSS width, for bar charts of *_mt integers. */
export function barWidth(part: number, whole: number): string {
  if (whole <= 0 || part <= 0) return "0%";
  return `${Math.max(1, Math.round((part * 100) / whole))}%`;
}

/** Integer milli-tokens as an exact decimal string: 6500000 -> "6500", 1500 -> "1.5". */
export function mtToDecimal(mt: number): string {
  if (!Number.isSafeInteger(mt)) return "—";
  const abs = Math.abs(mt);
  const whole = (abs - (abs % 1000)) / 1000;
  const fraction = String(abs % 1000)
    .padStart(3, "0")
    .replace(/0+$/, "");
  return `${mt < 0 ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}
