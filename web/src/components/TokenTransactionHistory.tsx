"use client";

import { useEffect, useRef, useState } from "react";
import type { Transaction } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import {
  actionLabel,
  formatDateTime,
  formatSignedTokens,
  formatTokens,
  kindLabel,
} from "../format";
import { ErrorMessage, Loading } from "./parts/Status";

export interface TokenTransactionHistoryProps {
  customerId: string;
  /** Entries per page (1..100, default 10). */
  pageSize?: number;
  /** Change it to load the first page again (e.g. after the dashboard refreshes). */
  refreshKey?: unknown;
  title?: string;
}

interface History {
  entries: Transaction[];
  nextCursor: string | null;
}

type Fetch =
  { step: "idle" } | { step: "loading"; more: boolean } | { step: "error"; error: unknown };

/** The ledger, newest first: `GET .../tokens/transactions?limit&cursor`, "Load more"
 * follows `next_cursor`. */
export function TokenTransactionHistory({
  customerId,
  pageSize = 10,
  refreshKey,
  title = "Transactions",
}: TokenTransactionHistoryProps) {
  const client = useTokenBillingClient();
  const [history, setHistory] = useState<History | null>(null);
  const [fetching, setFetching] = useState<Fetch>({ step: "loading", more: false });
  const [firstPage, setFirstPage] = useState(0);
  const shownCustomer = useRef(customerId);

  useEffect(() => {
    const controller = new AbortController();
    if (shownCustomer.current !== customerId) setHistory(null); // never another's entries
    shownCustomer.current = customerId;
    setFetching({ step: "loading", more: false });
    client
      .listTransactions(customerId, { limit: pageSize }, controller.signal)
      .then((page) => {
        if (controller.signal.aborted) return;
        setHistory({ entries: page.data, nextCursor: page.has_more ? page.next_cursor : null });
        setFetching({ step: "idle" });
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setFetching({ step: "error", error });
      });
    return () => controller.abort();
  }, [client, customerId, pageSize, refreshKey, firstPage]);

  async function loadMore(cursor: string): Promise<void> {
    setFetching({ step: "loading", more: true });
    try {
      const page = await client.listTransactions(customerId, { limit: pageSize, cursor });
      setHistory((current) => ({
        entries: [...(current?.entries ?? []), ...page.data],
        nextCursor: page.has_more ? page.next_cursor : null,
      }));
      setFetching({ step: "idle" });
    } catch (error) {
      setFetching({ step: "error", error });
    }
  }

  const retry = (): void => {
    if (history?.nextCursor) void loadMore(history.nextCursor);
    else setFirstPage((value) => value + 1);
  };

  return (
    <section className="tb-card tb-history" aria-labelledby="tb-history-title">
      <h2 id="tb-history-title">{title}</h2>
      {history && history.entries.length === 0 && <p>No transactions yet.</p>}
      {history && history.entries.length > 0 && (
        <ul className="tb-history__list" aria-label="Transactions, newest first">
          {history.entries.map((entry) => (
            <TransactionRow key={entry.id} entry={entry} />
          ))}
        </ul>
      )}
      {fetching.step === "loading" && (
        <Loading label={fetching.more ? "Loading more transactions…" : "Loading transactions…"} />
      )}
      {fetching.step === "error" && (
        <ErrorMessage
          error={fetching.error}
          context="Could not load transactions"
          onRetry={retry}
        />
      )}
      {fetching.step === "idle" && history?.nextCursor && (
        <button
          type="button"
          className="tb-button tb-button--secondary"
          onClick={() => history.nextCursor && void loadMore(history.nextCursor)}
        >
          Load more
        </button>
      )}
    </section>
  );
}

function describe(entry: Transaction): string {
  if (entry.kind === "purchase" && entry.package_id) return `${actionLabel(entry.package_id)} pack`;
  if (entry.usage_by_action) {
    return Object.entries(entry.usage_by_action)
      .map(([action, tokens]) => `${actionLabel(action)} ${formatTokens(tokens)}`)
      .join(", ");
  }
  return entry.reason ?? "";
}

function TransactionRow({ entry }: { entry: Transaction }) {
  const credit = entry.amount_mt > 0;
  return (
    <li className="tb-history__row" data-kind={entry.kind}>
      <span className="tb-history__what">
        <span className="tb-history__kind">{kindLabel(entry.kind)}</span>
        <span className="tb-history__detail">{describe(entry)}</span>
      </span>
      <time className="tb-history__when" dateTime={entry.created_at}>
        {formatDateTime(entry.created_at)}
      </time>
      <span className={`tb-history__amount ${credit ? "tb-amount--credit" : "tb-amount--debit"}`}>
        {formatSignedTokens(entry.amount)}
        <span className="tb-sr-only"> tokens</span>
      </span>
    </li>
  );
}
