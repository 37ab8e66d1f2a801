"use client";

import type { Balance, Dashboard, TokenPackage } from "../api/client";
import { useApi } from "../api/useApi";
import { newestBalance, useLiveBalance, type BalanceMessage } from "../api/useLiveBalance";
import { formatHours, formatPrice, formatTokens } from "../format";
import { OrderList } from "./parts/OrderList";
import { ReservedHolds } from "./parts/ReservedHolds";
import { LiveBadge } from "./parts/LiveBadge";
import { ErrorMessage, Loading } from "./parts/Status";
import { UsageChart } from "./parts/UsageChart";
import { TokenAutoTopUp } from "./TokenAutoTopUp";
import { BalanceSummary, isNewAccount } from "./TokenBalanceCard";
import { TokenCheckout } from "./TokenCheckout";
import { TokenTransactionHistory } from "./TokenTransactionHistory";
import { TokenVmSpending } from "./TokenVmSpending";

export interface TokenDashboardProps {
  customerId: string;
  successUrl?: string;
  cancelUrl?: string;
  redirect?: (url: string) => void;
  /** Entries per page of the transaction history (default 10). */
  historyPageSize?: number;
}

/** The customer's dashboard, from `GET /api/v1/customers/{id}/dashboard`: balance, estimated
 * hours, low-balance warning, tokens reserved by running VMs, quick purchases, usage by
 * action, transactions (paginated) and orders. */
export function TokenDashboard({
  customerId,
  successUrl,
  cancelUrl,
  redirect,
  historyPageSize = 10,
}: TokenDashboardProps) {
  const dashboard = useApi(
    (client, signal) => client.getDashboard(customerId, signal),
    [customerId],
  );
  const { state, reload, refreshing } = dashboard;
  const loadedVersion = state.status === "ready" ? state.data.balance.version : null;
  const live = useLiveBalance(customerId, {
    loadedVersion,
    // The balance moved: history, holds, orders and usage follow with one reload, unless
    // what is on screen already has that version.
    onResync: (latest) => {
      if (latest && loadedVersion !== null && latest.version <= loadedVersion) return;
      reload();
    },
  });

  return (
    <div className="tb-root tb-dashboard">
      <header className="tb-dashboard__header">
        <h1>Your tokens</h1>
        <LiveBadge status={live.status} />
        <button
          type="button"
          className="tb-button tb-button--secondary"
          onClick={reload}
          disabled={refreshing}
          aria-label="Refresh the dashboard"
        >
          {refreshing && state.status === "ready" ? "Refreshing…" : "Refresh"}
        </button>
      </header>
      {state.status === "loading" && <Loading label="Loading your dashboard…" />}
      {state.status === "error" && (
        <ErrorMessage
          error={state.error}
          context="Could not load your dashboard"
          onRetry={reload}
        />
      )}
      {state.status === "ready" && (
        <DashboardBody
          data={state.data}
          live={live.latest}
          customerId={customerId}
          checkout={{ successUrl, cancelUrl, redirect }}
          historyPageSize={historyPageSize}
        />
      )}
    </div>
  );
}

interface CheckoutOptions {
  successUrl: string | undefined;
  cancelUrl: string | undefined;
  redirect: ((url: string) => void) | undefined;
}

interface DashboardBodyProps {
  data: Dashboard;
  live: BalanceMessage | null;
  customerId: string;
  checkout: CheckoutOptions;
  historyPageSize: number;
}

function DashboardBody({ data, live, customerId, checkout, historyPageSize }: DashboardBodyProps) {
  const balance = newestBalance(data.balance, live); // never an older version over a newer
  return (
    <>
      {isNewAccount(balance) ? (
        <NewAccountNotice />
      ) : (
        balance.low_balance && <LowBalanceWarning balance={balance} />
      )}
      <div className="tb-dashboard__summary">
        <BalanceSummary balance={balance} lowBalanceBadge={false} estimateNote={false} />
        <HoursCard balance={balance} />
        <ReservedHolds balance={balance} />
      </div>
      <QuickPurchase packages={data.quick_purchase} customerId={customerId} checkout={checkout} />
      <TokenAutoTopUp customerId={customerId} live={false} refreshKey={data} {...checkout} />
      <TokenVmSpending customerId={customerId} refreshKey={data} />
      <div className="tb-dashboard__columns">
        <TokenTransactionHistory
          customerId={customerId}
          pageSize={historyPageSize}
          live={false}
          refreshKey={data}
        />
        <div className="tb-dashboard__side">
          <UsageChart
            usage={data.usage_last_30_days}
            periodStart={data.usage_period_start}
            periodEnd={data.usage_period_end}
          />
          <OrderList orders={data.recent_orders} />
        </div>
      </div>
    </>
  );
}

function NewAccountNotice() {
  return (
    <div className="tb-notice tb-notice--info" role="status" data-testid="new-account-notice">
      <p>
        <strong>No tokens yet.</strong> Buy a pack below to start: tokens never expire.
      </p>
    </div>
  );
}

function LowBalanceWarning({ balance }: { balance: Balance }) {
  const running = balance.active_holds.length > 0;
  return (
    <div className="tb-notice tb-notice--warning" role="alert" data-testid="low-balance-warning">
      <p>
        <strong>Low balance:</strong> {formatTokens(balance.available)} tokens available, under{" "}
        {formatTokens(balance.low_balance_threshold)}.{" "}
        {running ? "Top up to keep your running VMs going." : "Top up before you start more work."}
      </p>
    </div>
  );
}

function HoursCard({ balance }: { balance: Balance }) {
  return (
    <section className="tb-card tb-hours" aria-labelledby="tb-hours-title">
      <h2 id="tb-hours-title">Estimated time remaining</h2>
      <p className="tb-hours__value" data-testid="estimated-hours">
        ≈ {formatHours(balance.estimated_hours_remaining)}
      </p>
      <p className="tb-muted">
        with the tokens available now, at about 100 tokens an hour of typical use (a VM alone uses
        60).
      </p>
    </section>
  );
}

interface QuickPurchaseProps {
  packages: TokenPackage[];
  customerId: string;
  checkout: CheckoutOptions;
}

function QuickPurchase({ packages, customerId, checkout }: QuickPurchaseProps) {
  if (packages.length === 0) return null;
  return (
    <section className="tb-card tb-quick" aria-labelledby="tb-quick-title">
      <h2 id="tb-quick-title">Top up</h2>
      <ul className="tb-quick__list">
        {packages.map((pack) => (
          <li key={pack.id}>
            <TokenCheckout
              customerId={customerId}
              packageId={pack.id}
              packageName={pack.name}
              successUrl={checkout.successUrl}
              cancelUrl={checkout.cancelUrl}
              redirect={checkout.redirect}
              variant="secondary"
            >
              Buy {pack.name}: {formatTokens(pack.total_tokens)} tokens for{" "}
              {formatPrice(pack.price_cents, pack.currency)}
            </TokenCheckout>
          </li>
        ))}
      </ul>
    </section>
  );
}
