"use client";

// The live balance hook every component that shows or follows a balance uses. The
// components of one client share one channel per customer (./balanceChannel.ts): one
// WebSocket, or one poll while there is none, however many of them are on the page.
//
// Nothing here runs at import time or during a server render: a Next.js server build
// imports it, and the server snapshot is "connecting" with no balance.
import { useCallback, useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import {
  balanceChannel,
  IDLE_SNAPSHOT,
  POLL_MS,
  type BalanceMessage,
  type LiveSnapshot,
  type LiveStatus,
} from "./balanceChannel";
import { useTokenBillingClient } from "./context";

export {
  KEEPALIVE_MS,
  newestBalance,
  POLL_MS,
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
  reconnectDelayMs,
  RESYNC_THROTTLE_MS,
} from "./balanceChannel";
export type { BalanceMessage, LiveStatus } from "./balanceChannel";

export interface LiveBalance {
  status: LiveStatus;
  /** The newest balance of this customer the socket (or a poll) brought, or null. */
  latest: BalanceMessage | null;
  /** Moves each time the balance changed (throttled to one per 2 s): a key to reload the
   * views a balance message does not carry, such as the history. */
  revision: number;
}

export interface LiveBalanceOptions {
  /** Called when the balance changed to a newer version than any seen (throttled to one per
   * 2 s), with the newest balance: reload what the message does not carry (history, holds,
   * orders). Never called when nothing changed. */
  onResync?: (latest: BalanceMessage | null) => void;
  /** The account version of the data the caller shows, once loaded: changes are counted
   * from it (a message for a version it already shows is no change). */
  loadedVersion?: number | null;
  /** Polling period while the socket is closed (default 15 s); the first subscriber of a
   * customer sets it. */
  pollMs?: number;
  /** Off: no socket and no polling (e.g. a parent reloads this view itself). */
  enabled?: boolean;
}

const noSubscription = (): (() => void) => () => undefined;

/** Subscribes to `customerId`'s live balance while mounted (see the module comment). */
export function useLiveBalance(customerId: string, options: LiveBalanceOptions = {}): LiveBalance {
  const client = useTokenBillingClient();
  const { pollMs = POLL_MS, enabled = true, loadedVersion = null } = options;
  const channel = useMemo(
    () => (enabled ? balanceChannel(client, customerId, pollMs) : null),
    [client, customerId, pollMs, enabled],
  );
  const snapshot: LiveSnapshot = useSyncExternalStore(
    channel?.subscribe ?? noSubscription,
    channel?.snapshot ?? idleSnapshot,
    idleSnapshot,
  );

  useEffect(() => {
    if (channel && loadedVersion !== null) channel.observe(loadedVersion);
  }, [channel, loadedVersion]);

  // onResync on each revision after the one this view mounted (or switched customer) with.
  const onResync = useRef(options.onResync);
  onResync.current = options.onResync;
  const seen = useRef({ channel, revision: snapshot.revision });
  const latest = useRef(snapshot.latest);
  latest.current = snapshot.latest;
  const announce = useCallback(() => onResync.current?.(latest.current), []);
  useEffect(() => {
    if (seen.current.channel !== channel) {
      seen.current = { channel, revision: snapshot.revision };
      return;
    }
    if (snapshot.revision === seen.current.revision) return;
    seen.current = { channel, revision: snapshot.revision };
    announce();
  }, [channel, snapshot.revision, announce]);

  const own = snapshot.latest?.customer_id === customerId ? snapshot.latest : null;
  return { status: snapshot.status, latest: own, revision: snapshot.revision };
}

function idleSnapshot(): LiveSnapshot {
  return IDLE_SNAPSHOT;
}
