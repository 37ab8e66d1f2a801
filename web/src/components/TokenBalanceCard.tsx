"use client";

import type { Balance } from "../api/client";
import { useApi } from "../api/useApi";
import { newestBalance, useLiveBalance, type LiveStatus } from "../api/useLiveBalance";
import { formatHours, formatTokens } from "../format";
import { LiveBadge } from "./parts/LiveBadge";
import { ErrorMessage, Loading } from "./parts/Status";

export type TokenBalanceCardProps =
  /** Shows a balance the caller already has (the dashboard's). */
  | { balance: Balance; customerId?: undefined }
  /** Loads the balance itself: `GET /api/v1/customers/{id}/tokens`. */
  | { customerId: string; balance?: undefined };

/** The compact balance: tokens available now, the total and what running VMs reserve. */
export function TokenBalanceCard(props: TokenBalanceCardProps) {
  if (props.balance) return <BalanceSummary balance={props.balance} />;
  return <LoadedBalanceCard customerId={props.customerId} />;
}

function LoadedBalanceCard({ customerId }: { customerId: string }) {
  const { state, reload } = useApi(
    (client, signal) => client.getBalance(customerId, signal),
    [customerId],
  );
  const live = useLiveBalance(customerId, { onResync: reload });
  if (state.status === "loading") {
    return (
      <section className="tb-card tb-balance" aria-label="Token balance">
        <Loading label="Loading your balance…" />
      </section>
    );
  }
  if (state.status === "error") {
    return (
      <section className="tb-card tb-balance" aria-label="Token balance">
        <ErrorMessage error={state.error} context="Could not load your balance" onRetry={reload} />
      </section>
    );
  }
  return <BalanceSummary balance={newestBalance(state.data, live.latest)} live={live.status} />;
}

function BalanceSummary({ balance, live }: { balance: Balance; live?: LiveStatus }) {
  return (
    <section
      className={`tb-card tb-balance${balance.low_balance ? " tb-balance--low" : ""}`}
      aria-label="Token balance"
    >
      <p className="tb-balance__label">Tokens available</p>
      {live && <LiveBadge status={live} />}
      <p className="tb-balance__amount" data-testid="available-tokens">
        {formatTokens(balance.available)}
      </p>
      <dl className="tb-balance__details">
        <div>
          <dt>Balance</dt>
          <dd data-testid="balance-tokens">{formatTokens(balance.balance)}</dd>
        </div>
        <div>
          <dt>Reserved</dt>
          <dd>{formatTokens(balance.held)}</dd>
        </div>
        <div>
          <dt>Estimated time left</dt>
          <dd>≈ {formatHours(balance.estimated_hours_remaining)}</dd>
        </div>
      </dl>
      {balance.low_balance && (
        <p className="tb-badge tb-badge--warning">
          Low balance (under {formatTokens(balance.low_balance_threshold)} tokens)
        </p>
      )}
    </section>
  );
}
