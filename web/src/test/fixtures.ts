// Replies shaped by the generated API types: a fixture that drifts from openapi.json fails
// the type check.
import type {
  AutoTopUp,
  Balance,
  Dashboard,
  Hold,
  Order,
  PackageList,
  RateList,
  TokenPackage,
  Transaction,
  UsageEstimate,
} from "../api/client";

function pack(
  id: string,
  name: string,
  cents: number,
  tokens: number,
  bonus: number,
): TokenPackage {
  return {
    object: "token_package",
    id,
    name,
    price_cents: cents,
    currency: "usd",
    tokens: String(tokens),
    tokens_mt: tokens * 1000,
    bonus: String(bonus),
    bonus_mt: bonus * 1000,
    total_tokens: String(tokens + bonus),
    total_tokens_mt: (tokens + bonus) * 1000,
    estimated_hours: (tokens + bonus) / 100,
    estimated_hours_exact: String((tokens + bonus) / 100),
  };
}

export const STARTER = pack("starter", "Starter", 1900, 2000, 0);
export const GROWTH = pack("growth", "Growth", 4900, 6000, 500);
export const PRO = pack("pro", "Pro", 9900, 15000, 1500);

export const PACKAGES: PackageList = {
  object: "list",
  catalog_version: "2026-11-01",
  data: [STARTER, GROWTH, PRO],
  has_more: false,
  config: { stripe_publishable_key: null, currency: "usd" },
};

export const RATES: RateList = {
  object: "list",
  catalog_version: "2026-11-01",
  low_balance_threshold: "500",
  low_balance_threshold_mt: 500000,
  has_more: false,
  data: [
    {
      object: "token_rate",
      action: "vm_runtime",
      unit: "minute",
      description: "VM runtime, per minute",
      tokens_per_unit: "1",
      tokens_per_unit_mt: 1000,
    },
    {
      object: "token_rate",
      action: "screenshot",
      unit: "screenshot",
      description: "Screenshot capture",
      tokens_per_unit: "0.5",
      tokens_per_unit_mt: 500,
    },
    {
      object: "token_rate",
      action: "api_call",
      unit: "call",
      description: "API call",
      tokens_per_unit: "0.1",
      tokens_per_unit_mt: 100,
    },
    {
      object: "token_rate",
      action: "ai_message",
      unit: "message",
      description: "AI message",
      tokens_per_unit: "0.2",
      tokens_per_unit_mt: 200,
    },
    {
      object: "token_rate",
      action: "file_upload",
      unit: "MB",
      description: "File upload, per MB",
      tokens_per_unit: "1",
      tokens_per_unit_mt: 1000,
    },
  ],
};

export function estimate(
  recommended: TokenPackage,
  tokensPerMonth: string,
  packs = 1,
): UsageEstimate {
  return {
    object: "usage_estimate",
    catalog_version: "2026-11-01",
    lines: [
      {
        action: "vm_runtime",
        quantity_per_month: "600",
        tokens_per_month: "600",
        tokens_per_month_mt: 600000,
      },
    ],
    tokens_per_month: tokensPerMonth,
    tokens_per_month_mt: Number(tokensPerMonth) * 1000, // whole tokens in these fixtures
    recommended_package: recommended,
    packs_needed: packs,
  };
}

export const HOLD: Hold = {
  object: "token_hold",
  id: "hold-1",
  vm_id: "vm-42",
  amount: "15",
  amount_mt: 15000,
  expires_at: "2026-11-25T12:15:00Z",
  created_at: "2026-11-25T12:00:00Z",
};

export function balance(overrides: Partial<Balance> = {}): Balance {
  return {
    object: "token_balance",
    customer_id: "cust_a",
    balance: "6400",
    balance_mt: 6400000,
    held: "0",
    held_mt: 0,
    available: "6400",
    available_mt: 6400000,
    lifetime_purchased: "6000",
    lifetime_purchased_mt: 6000000,
    lifetime_bonus: "500",
    lifetime_bonus_mt: 500000,
    lifetime_granted: "0",
    lifetime_granted_mt: 0,
    lifetime_used: "100",
    lifetime_used_mt: 100000,
    lifetime_clawed_back: "0",
    lifetime_clawed_back_mt: 0,
    estimated_hours_remaining: 64,
    estimated_hours_remaining_exact: "64",
    low_balance: false,
    low_balance_threshold: "500",
    low_balance_threshold_mt: 500000,
    active_holds: [],
    plan_tier: null,
    version: 2,
    ...overrides,
  };
}

export function transaction(id: string, overrides: Partial<Transaction> = {}): Transaction {
  return {
    object: "token_transaction",
    id,
    kind: "usage",
    amount: "-100",
    amount_mt: -100000,
    created_at: "2026-11-25T11:00:00Z",
    occurred_at: null,
    usage_by_action: { vm_runtime: "100" },
    order_id: null,
    package_id: null,
    reason: null,
    ...overrides,
  };
}

export function order(status: string, overrides: Partial<Order> = {}): Order {
  return {
    object: "token_order",
    id: "ord_1",
    status,
    package_id: "growth",
    price_cents: 4900,
    currency: "usd",
    tokens: "6000",
    tokens_mt: 6000000,
    bonus: "500",
    bonus_mt: 500000,
    created_at: "2026-11-25T10:00:00Z",
    paid_at: status === "paid" ? "2026-11-25T10:01:00Z" : null,
    checkout_url: "http://127.0.0.1:3000/_local/checkout/cs_1",
    refunded_cents: 0,
    clawed_back: "0",
    clawed_back_mt: 0,
    flag_reason: null,
    subtotal_cents: status === "paid" ? 4900 : null,
    tax_cents: status === "paid" ? 0 : null,
    total_cents: status === "paid" ? 4900 : null,
    invoice_number: null,
    invoice_url: null,
    invoice_pdf: null,
    receipt_url: null,
    ...overrides,
  };
}

export function dashboard(overrides: Partial<Dashboard> = {}): Dashboard {
  return {
    object: "token_dashboard",
    balance: balance(),
    recent_transactions: [transaction("txn_2")],
    recent_orders: [order("paid")],
    usage_last_30_days: [
      { action: "vm_runtime", tokens: "100", tokens_mt: 100000 },
      { action: "api_call", tokens: "2.5", tokens_mt: 2500 },
    ],
    usage_period_start: "2026-10-27",
    usage_period_end: "2026-11-25",
    quick_purchase: [STARTER, GROWTH, PRO],
    currency: "usd",
    ...overrides,
  };
}

export function autoTopUp(overrides: Partial<AutoTopUp> = {}): AutoTopUp {
  return {
    object: "auto_top_up",
    customer_id: "cust_a",
    enabled: false,
    state: "disabled",
    paused_reason: null,
    recovery_url: null,
    disabled_reason: null,
    package_id: null,
    threshold: "500",
    threshold_mt: 500000,
    target: "500",
    target_mt: 500000,
    max_charges_per_day: 2,
    max_cents_per_month: null,
    currency: "usd",
    consecutive_failures: 0,
    card: null,
    consent: null,
    consent_text: "I authorise this service to charge my saved card.",
    consent_text_version: "2026-12-01",
    updated_by: null,
    attempts: [],
    ...overrides,
  };
}

export const VISA = { brand: "visa", last4: "4242", exp_month: 12, exp_year: 2034 };
