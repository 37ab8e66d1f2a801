"use client";

import { useEffect, useRef, useState } from "react";
import type { Transaction, TransactionPage } from "../api/client";
import { useTokenBillingClient } from "../api/context";
import { useLiveBalance } from "../api/useLiveBalance";
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
  /** Follow the live balance: a debit, hold or credit shows here as it happens (default
   * true; the first page is asked again only when the balance moved). Off when a parent
   * refreshes the history itself through `refreshKey`, as the dashboard does. */
  live?: boolean;
  /** Change it to ask for the first page again (e.g. after the dashboard refreshes). */
  refreshKey?: unknown;
  title?: string;
}

interface History {
  entries: Transaction[];
  nextCursor: string | null;
}

type Fetch =
  { step: "idle" } | { step: "loading"; more: boolean } | { step: "error"; error: unknown };

/** A new first page over the entries shown: the new entries go on top and the pages loaded
 * with "Load more" stay, unless so much happened that the new page does not reach them. */
export function mergeFirstPage(shown: History | null, page: TransactionPage): History {
  const fresh: History = {
    entries: page.data,
    nextCursor: page.has_more ? page.next_cursor : null,
  };
  const newestShown = shown?.entries[0];
  if (!shown || !newestShown) return fresh;
  const overlap = page.data.findIndex((entry) => entry.id === newestShown.id);
  if (overlap < 0) return fresh;
  return {
    entries: [...page.data.slice(0, overlap), ...shown.entries],
    nextCursor: shown.nextCursor,
  };
}

/** The ledger, newest first: `GET .../tokens/transactions?limit&cursor`, "Load more"
 * follows `next_cursor`; new entries appear as the live balance moves. */
export function TokenTransactionHistory({
  customerId,
  pageSize = 10,
  live = true,
  refreshKey,
  title = "Transactions",
}: TokenTransactionHistoryProps) {
  const client = useTokenBillingClient();
  const [history, setHistory] = useState<History | null>(null);
  const [fetching, setFetching] = useState<Fetch>({ step: "loading", more: false });
  const [firstPage, setFirstPage] = useState(0);
  const [liveChanges, setLiveChanges] = useState(0);
  useLiveBalance(customerId, {
    enabled: live,
    onResync: () => setLiveChanges((count) => count + 1),
  });
  const shown = useRef<{ customerId: string; pageSize: number } | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    const same = shown.current?.customerId === customerId && shown.current.pageSize === pageSize;
    if (!same) setHistory(null); // never another customer's entries
    shown.current = { customerId, pageSize };
    // A refresh over entries on screen keeps them there, quietly, until the page arrives.
    if (!same) setFetching({ step: "loading", more: false });
    client
      .listTransactions(customerId, { limit: pageSize }, controller.signal)
      .then((page) => {
        if (controller.signal.aborted) return;
        setHistory((current) =>
          same ? mergeFirstPage(current, page) : mergeFirstPage(null, page),
        );
        setFetching({ step: "idle" });
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setFetching({ step: "error", error });
      });
    return () => controller.abort();
  }, [client, customerId, pageSize, refreshKey, firstPage, liveChanges]);

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
    else {
      setFetching({ step: "loading", more: false });
      setFirstPage((value) => value + 1);
    }
  };

  return (
    <section className="tb-root tb-card tb-history" aria-labelledby="tb-history-title">
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
    <li className="tb-history__row" data-kind={entry.kind} data-id={entry.id}>
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
