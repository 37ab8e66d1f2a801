"use client";

import { useEffect, useState, type ReactNode } from "react";
import { newIdempotencyKey, type CheckoutStarted, type Order } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import { formatPrice, formatTokens, mtToDecimal, orderStatusLabel } from "../format";
import { ErrorMessage, Loading } from "./parts/Status";

// ---- the Buy button -------------------------------------------------------------------

export interface TokenCheckoutProps {
  customerId: string;
  packageId: string;
  /** Names the pack in the default button text ("Buy the Growth pack") and in errors. */
  packageName?: string;
  /** The button's text, which is also its accessible name (default "Buy the <pack> pack"). */
  children?: ReactNode;
  /** Where Stripe returns after paying; default `<this origin>/checkout/success`. The API
   * adds `order_id` (and `session_id`) to it. */
  successUrl?: string;
  /** Where Stripe returns on cancel; default `<this origin>/checkout/cancel`. */
  cancelUrl?: string;
  /** Follows the checkout URL; default `window.location.assign`. */
  redirect?: (url: string) => void;
  onStarted?: (checkout: CheckoutStarted) => void;
  variant?: "primary" | "secondary";
  /** Save the card for auto top-up (Checkout with `setup_future_usage=off_session`). */
  saveCard?: boolean;
}

type BuyState =
  | { step: "idle" }
  | { step: "starting" }
  | { step: "redirecting" }
  | { step: "error"; error: unknown };

/** "Buy": starts a Stripe Checkout for one package (a new Idempotency-Key per click) and
 * follows its `checkout_url`. */
export function TokenCheckout({
  customerId,
  packageId,
  packageName,
  children,
  successUrl,
  cancelUrl,
  redirect,
  onStarted,
  variant = "primary",
  saveCard = false,
}: TokenCheckoutProps) {
  const client = useTokenBillingClient();
  const [state, setState] = useState<BuyState>({ step: "idle" });
  const busy = state.step === "starting" || state.step === "redirecting";
  const name = packageName ?? packageId;

  async function buy(): Promise<void> {
    setState({ step: "starting" });
    const origin = window.location.origin;
    try {
      const checkout = await client.startCheckout(
        customerId,
        {
          package_id: packageId,
          success_url: successUrl ?? `${origin}/checkout/success`,
          cancel_url: cancelUrl ?? `${origin}/checkout/cancel`,
          ...(saveCard ? { save_card: true } : {}),
        },
        newIdempotencyKey(),
      );
      setState({ step: "redirecting" });
      onStarted?.(checkout);
      (redirect ?? ((url: string) => window.location.assign(url)))(checkout.checkout_url);
    } catch (error) {
      setState({ step: "error", error });
    }
  }

  return (
    <div className="tb-root tb-checkout">
      <button
        type="button"
        className={`tb-button tb-button--${variant}`}
        disabled={busy}
        aria-busy={busy}
        onClick={() => void buy()}
      >
        {state.step === "starting"
          ? "Starting checkout…"
          : state.step === "redirecting"
            ? "Opening checkout…"
            : (children ?? `Buy the ${name} pack`)}
      </button>
      {state.step === "error" && (
        <ErrorMessage error={state.error} context={`Could not start the ${name} checkout`} />
      )}
    </div>
  );
}

// ---- the return pages -----------------------------------------------------------------

export interface TokenCheckoutStatusProps {
  customerId: string;
  /** The `order_id` the API added to the success or cancel URL. */
  orderId: string | null;
  outcome: "success" | "cancel";
  pollIntervalMs?: number;
  /** After this long without a credit, say that it takes longer than usual (default 20 s). */
  slowAfterMs?: number;
  /** Stop polling after this long (default 2 minutes); "Check again" resumes. */
  giveUpAfterMs?: number;
}

const FINAL_STATUSES = new Set(["paid", "failed", "expired", "flagged"]);

type Watch =
  | { phase: "loading" }
  | { phase: "missing"; polledMs: number }
  | { phase: "order"; order: Order; polledMs: number }
  | { phase: "error"; error: unknown };

/** The order's real status after Stripe sends the customer back: polls the order list
 * until the webhook has credited the order (or it ends otherwise). */
export function TokenCheckoutStatus({
  customerId,
  orderId,
  outcome,
  pollIntervalMs = 1000,
  slowAfterMs = 20_000,
  giveUpAfterMs = 120_000,
}: TokenCheckoutStatusProps) {
  const client = useTokenBillingClient();
  const [watch, setWatch] = useState<Watch>({ phase: "loading" });
  const [round, setRound] = useState(0);
  const [stopped, setStopped] = useState(false);

  useEffect(() => {
    if (!orderId) return undefined;
    const controller = new AbortController();
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    setStopped(false);

    async function poll(): Promise<void> {
      try {
        const page = await client.listOrders(customerId, { limit: 20 }, controller.signal);
        if (controller.signal.aborted) return;
        const polledMs = Date.now() - started;
        const order = page.data.find((candidate) => candidate.id === orderId);
        setWatch(order ? { phase: "order", order, polledMs } : { phase: "missing", polledMs });
        const settled = order !== undefined && FINAL_STATUSES.has(order.status);
        // A cancelled checkout leaves the order pending: nothing more will happen to wait for.
        const waiting = !settled && !(outcome === "cancel" && order !== undefined);
        if (!waiting) return;
        // An order is written before its checkout starts: one missing after the slow mark
        // is not coming (a wrong link, or an order older than the 20 newest).
        if (polledMs >= (order ? giveUpAfterMs : slowAfterMs)) {
          setStopped(true);
          return;
        }
        timer = setTimeout(() => void poll(), pollIntervalMs);
      } catch (error) {
        if (!controller.signal.aborted) setWatch({ phase: "error", error });
      }
    }

    void poll();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [client, customerId, orderId, outcome, pollIntervalMs, slowAfterMs, giveUpAfterMs, round]);

  const again = (): void => setRound((value) => value + 1);
  const title = outcome === "success" ? "Thank you for your purchase" : "Checkout cancelled";

  return (
    <section
      className="tb-root tb-card tb-checkout-status"
      aria-labelledby="tb-checkout-status-title"
    >
      <h2 id="tb-checkout-status-title">{title}</h2>
      {!orderId ? (
        <p role="alert">
          This page shows an order after checkout, but the link has no order id. Your orders are
          listed on your dashboard.
        </p>
      ) : (
        <WatchView
          orderId={orderId}
          watch={watch}
          outcome={outcome}
          slow={
            watch.phase !== "loading" && watch.phase !== "error" && watch.polledMs >= slowAfterMs
          }
          stopped={stopped}
          onRetry={again}
        />
      )}
    </section>
  );
}

interface WatchViewProps {
  orderId: string;
  watch: Watch;
  outcome: "success" | "cancel";
  slow: boolean;
  stopped: boolean;
  onRetry: () => void;
}

function WatchView({ orderId, watch, outcome, slow, stopped, onRetry }: WatchViewProps) {
  if (watch.phase === "loading") return <Loading label="Checking your order…" />;
  if (watch.phase === "error") {
    return (
      <ErrorMessage error={watch.error} context="Could not check your order" onRetry={onRetry} />
    );
  }
  const slowNote = (slow || stopped) && (
    <div className="tb-notice tb-notice--warning" role="alert">
      <p>
        This is taking longer than usual. Your payment may still be processing: the tokens are added
        as soon as the payment is confirmed, and your dashboard will show them. You can leave this
        page.
      </p>
      {stopped && (
        <button type="button" className="tb-button tb-button--secondary" onClick={onRetry}>
          Check again
        </button>
      )}
    </div>
  );
  if (watch.phase === "missing") {
    if (!slow && !stopped) return <Loading label="Looking for your order…" />;
    return (
      <div className="tb-notice tb-notice--warning" role="alert" data-testid="order-not-found">
        <p>
          We could not find order <code>{orderId}</code> among your recent orders. Check the link,
          or see your orders on your dashboard.
        </p>
        {stopped && (
          <button type="button" className="tb-button tb-button--secondary" onClick={onRetry}>
            Check again
          </button>
        )}
      </div>
    );
  }
  return (
    <>
      <OrderOutcome order={watch.order} outcome={outcome} />
      {watch.order.status === "pending" && outcome === "success" && slowNote}
    </>
  );
}

function OrderOutcome({ order, outcome }: { order: Order; outcome: "success" | "cancel" }) {
  const total = formatTokens(mtToDecimal(order.tokens_mt + order.bonus_mt));
  const price = formatPrice(order.price_cents, order.currency);
  const pack = `${order.package_id.charAt(0).toUpperCase()}${order.package_id.slice(1)} pack`;
  return (
    <div className="tb-order-outcome">
      <dl className="tb-facts">
        <div>
          <dt>Order</dt>
          <dd>
            {pack}, {price}
          </dd>
        </div>
        <div>
          <dt>Status</dt>
          <dd data-testid="order-status" data-status={order.status}>
            {order.status === "pending" && outcome === "cancel"
              ? "Not paid: checkout cancelled"
              : orderStatusLabel(order.status)}
          </dd>
        </div>
      </dl>
      {order.status === "paid" && (
        <p className="tb-notice tb-notice--success" role="status">
          Payment received: {total} tokens were added to your balance.
        </p>
      )}
      {order.status === "pending" && outcome === "success" && (
        <Loading label="Waiting for the payment confirmation…" />
      )}
      {order.status === "pending" && outcome === "cancel" && (
        <p role="status">You were not charged. You can pick a pack again whenever you like.</p>
      )}
      {order.status === "failed" && (
        <p className="tb-notice tb-notice--warning" role="alert">
          The payment failed and no tokens were added. Please try again with another payment method.
        </p>
      )}
      {order.status === "expired" && (
        <p role="status">This checkout expired before payment. No tokens were added.</p>
      )}
      {order.status === "flagged" && (
        <p className="tb-notice tb-notice--warning" role="alert">
          We are reviewing this payment; the tokens are added once it is confirmed.
        </p>
      )}
    </div>
  );
}
