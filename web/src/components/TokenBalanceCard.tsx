"use client";

import { useEffect, useRef } from "react";
import type { Balance } from "../api/client";
import { useApi } from "../api/useApi";
import { newestBalance, useLiveBalance, type LiveStatus } from "../api/useLiveBalance";
import { ESTIMATE_ASSUMPTION, formatHours, formatTokens } from "../format";
import { LiveBadge } from "./parts/LiveBadge";
import { ErrorMessage, Loading } from "./parts/Status";

export type TokenBalanceCardProps =
  /** Shows a balance the caller already has (the dashboard's). */
  | { balance: Balance; customerId?: undefined; onBalanceChange?: undefined }
  /** Loads the balance itself (`GET /api/v1/customers/{id}/tokens`) and follows it live. */
  | {
      customerId: string;
      balance?: undefined;
      /** Called with the balance each time it changes after the first load (a newer account
       * version): refresh what you show beside it. `TokenTransactionHistory` and the
       * dashboard follow the same live balance on their own. */
      onBalanceChange?: (balance: Balance) => void;
    };

/** The compact balance: tokens available now, the total and what running VMs reserve. */
export function TokenBalanceCard(props: TokenBalanceCardProps) {
  if (props.balance) return <BalanceSummary balance={props.balance} />;
  return (
    <LoadedBalanceCard customerId={props.customerId} onBalanceChange={props.onBalanceChange} />
  );
}

function LoadedBalanceCard({
  customerId,
  onBalanceChange,
}: {
  customerId: string;
  onBalanceChange: ((balance: Balance) => void) | undefined;
}) {
  const { state, reload } = useApi(
    (client, signal) => client.getBalance(customerId, signal),
    [customerId],
  );
  // The socket (or the shared poll) brings every newer balance: no reload of its own.
  const live = useLiveBalance(customerId, {
    loadedVersion: state.status === "ready" ? state.data.version : null,
  });
  const shown = state.status === "ready" ? newestBalance(state.data, live.latest) : null;
  useBalanceChanges(shown, onBalanceChange);
  if (state.status === "loading") {
    return (
      <section className="tb-root tb-card tb-balance" aria-label="Token balance">
        <Loading label="Loading your balance…" />
      </section>
    );
  }
  if (state.status === "error" || !shown) {
    return (
      <section className="tb-root tb-card tb-balance" aria-label="Token balance">
        <ErrorMessage error={state.error} context="Could not load your balance" onRetry={reload} />
      </section>
    );
  }
  return <BalanceSummary balance={shown} live={live.status} />;
}

/** Calls `onChange` when the shown balance moves to a newer version (not on the first). */
function useBalanceChanges(
  shown: Balance | null,
  onChange: ((balance: Balance) => void) | undefined,
): void {
  const callback = useRef(onChange);
  callback.current = onChange;
  const lastVersion = useRef<number | null>(null);
  useEffect(() => {
    if (!shown) return;
    const previous = lastVersion.current;
    if (previous !== null && shown.version > previous) callback.current?.(shown);
    if (previous === null || shown.version > previous) lastVersion.current = shown.version;
  }, [shown]);
}

/** Nothing was ever credited: a new customer, who is not "low" but has yet to buy. */
export function isNewAccount(balance: Balance): boolean {
  return (
    balance.balance_mt === 0 &&
    balance.lifetime_purchased_mt + balance.lifetime_bonus_mt + balance.lifetime_granted_mt === 0
  );
}

export interface BalanceSummaryProps {
  balance: Balance;
  live?: LiveStatus;
  /** The low-balance badge (off where a page shows its own warning, as the dashboard does). */
  lowBalanceBadge?: boolean;
  /** What the estimated hours assume (off where the page says it, as the dashboard does). */
  estimateNote?: boolean;
}

export function BalanceSummary({
  balance,
  live,
  lowBalanceBadge = true,
  estimateNote = true,
}: BalanceSummaryProps) {
  const fresh = isNewAccount(balance);
  return (
    <section
      className={`tb-root tb-card tb-balance${balance.low_balance && !fresh ? " tb-balance--low" : ""}`}
      aria-label="Token balance"
    >
      <div className="tb-balance__top">
        <p className="tb-balance__label">Tokens available</p>
        {live && <LiveBadge status={live} />}
      </div>
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
      {estimateNote && <p className="tb-muted tb-balance__note">{ESTIMATE_ASSUMPTION}</p>}
      {lowBalanceBadge && fresh && <p className="tb-badge tb-badge--info">No tokens yet</p>}
      {lowBalanceBadge && balance.low_balance && !fresh && (
        <p className="tb-badge tb-badge--warning">
          Low balance (under {formatTokens(balance.low_balance_threshold)} tokens)
        </p>
      )}
    </section>
  );
}
