"use client";

// The live balance: one WebSocket per component that shows a balance, fed by the ledger
// stream (see the README's "Real-time balance"). Every message is the whole balance at an
// account `version`; a message older than what is shown is dropped, so the view never goes
// back. While the socket is not open the hook polls instead (`onResync` every `pollMs`),
// reconnects with exponential backoff and full jitter, and asks for one resync when it is
// open again (changes made while it was closed were never sent).
//
// Nothing here runs at import time or during render: a Next.js server build imports it.
import { useEffect, useRef, useState } from "react";
import type { Balance } from "./client";
import { useTokenBillingClient } from "./context";

export interface BalanceMessage {
  type: "balance";
  customer_id: string;
  balance: string;
  balance_mt: number;
  available: string;
  available_mt: number;
  held: string;
  held_mt: number;
  low_balance: boolean;
  version: number;
  at: string;
}

/** "live": the socket is open; "connecting": opening it; "polling": no socket (none
 * configured, refused, or closed and waiting to reconnect), the data is polled. */
export type LiveStatus = "connecting" | "live" | "polling";

export interface LiveBalance {
  status: LiveStatus;
  /** The newest balance the socket sent, or null before the first one. */
  latest: BalanceMessage | null;
}

export interface LiveBalanceOptions {
  /** Load the data again: called while polling, after a reconnect, and (throttled) after a
   * message, so the parts a message does not carry (history, holds) follow. */
  onResync?: () => void;
  /** Polling period while the socket is closed (default 15 s). */
  pollMs?: number;
  /** Off: no socket and no polling (e.g. a balance given by a parent). */
  enabled?: boolean;
}

export const POLL_MS = 15_000;
export const RECONNECT_BASE_MS = 1_000;
export const RECONNECT_MAX_MS = 30_000;
/** API Gateway closes a socket idle for 10 minutes: a ping every 5 keeps it open. */
export const KEEPALIVE_MS = 5 * 60_000;
/** At most one resync per this long while messages stream in. */
export const RESYNC_THROTTLE_MS = 2_000;

function isBalanceMessage(value: unknown, customerId: string): value is BalanceMessage {
  if (typeof value !== "object" || value === null) return false;
  const message = value as Record<string, unknown>;
  return (
    message.type === "balance" &&
    message.customer_id === customerId &&
    Number.isSafeInteger(message.version) &&
    Number.isSafeInteger(message.balance_mt) &&
    Number.isSafeInteger(message.available_mt) &&
    Number.isSafeInteger(message.held_mt) &&
    typeof message.balance === "string" &&
    typeof message.available === "string" &&
    typeof message.held === "string"
  );
}

/** Backoff before reconnect attempt `attempt` (0-based): full jitter up to 1 s, 2 s, 4 s, …
 * capped at 30 s. */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 10));
  return Math.max(250, Math.floor(random() * ceiling));
}

/** The balance to show: the HTTP reply, or the live message when it is newer. Estimated
 * hours follow the API's rule (whole hours at 100 tokens an hour of available tokens). */
export function newestBalance(balance: Balance, live: BalanceMessage | null): Balance {
  if (!live || live.customer_id !== balance.customer_id || live.version <= balance.version) {
    return balance;
  }
  return {
    ...balance,
    balance: live.balance,
    balance_mt: live.balance_mt,
    available: live.available,
    available_mt: live.available_mt,
    held: live.held,
    held_mt: live.held_mt,
    low_balance: live.low_balance,
    version: live.version,
    estimated_hours_remaining: Math.max(0, Math.floor(live.available_mt / 100_000)),
  };
}

/** Subscribes to `customerId`'s live balance while mounted (see the module comment). */
export function useLiveBalance(customerId: string, options: LiveBalanceOptions = {}): LiveBalance {
  const client = useTokenBillingClient();
  const { pollMs = POLL_MS, enabled = true } = options;
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [latest, setLatest] = useState<BalanceMessage | null>(null);
  const onResync = useRef(options.onResync);
  onResync.current = options.onResync;

  useEffect(() => {
    setLatest(null); // another customer: never show the previous one's figures
    if (!enabled) return undefined;
    let stopped = false;
    let socket: WebSocket | null = null;
    let attempt = 0;
    let newestVersion = -1;
    let wasOpen = false;
    let lastResync = 0;
    let pollTimer: ReturnType<typeof setInterval> | undefined;
    let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
    let keepaliveTimer: ReturnType<typeof setInterval> | undefined;
    let resyncTimer: ReturnType<typeof setTimeout> | undefined;

    const resync = (): void => onResync.current?.();
    const startPolling = (): void => {
      setStatus("polling");
      if (pollTimer === undefined) pollTimer = setInterval(resync, pollMs);
    };
    const stopPolling = (): void => {
      clearInterval(pollTimer);
      pollTimer = undefined;
    };
    const throttledResync = (): void => {
      if (resyncTimer !== undefined) return;
      const wait = Math.max(0, lastResync + RESYNC_THROTTLE_MS - Date.now());
      resyncTimer = setTimeout(() => {
        resyncTimer = undefined;
        lastResync = Date.now();
        resync();
      }, wait);
    };

    const open = (): void => {
      const target = client.balanceSocket(customerId);
      if (!target || typeof WebSocket === "undefined") {
        startPolling(); // no socket to be had: polling for good
        return;
      }
      setStatus((current) => (current === "live" ? current : "connecting"));
      let opened: WebSocket;
      try {
        opened = new WebSocket(target.url, target.protocols);
      } catch {
        scheduleReconnect();
        return;
      }
      socket = opened;
      opened.onopen = () => {
        if (stopped) return;
        attempt = 0;
        stopPolling();
        setStatus("live");
        if (wasOpen) resync(); // what changed while it was closed was never sent
        wasOpen = true;
        clearInterval(keepaliveTimer);
        keepaliveTimer = setInterval(() => {
          if (opened.readyState === WebSocket.OPEN) opened.send('{"action":"ping"}');
        }, KEEPALIVE_MS);
      };
      opened.onmessage = (event: MessageEvent) => {
        if (stopped || typeof event.data !== "string") return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!isBalanceMessage(parsed, customerId) || parsed.version <= newestVersion) return;
        newestVersion = parsed.version;
        setLatest(parsed);
        throttledResync();
      };
      opened.onclose = () => {
        clearInterval(keepaliveTimer);
        if (stopped || socket !== opened) return;
        socket = null;
        startPolling();
        scheduleReconnect();
      };
    };

    const scheduleReconnect = (): void => {
      if (stopped) return;
      startPolling();
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(open, reconnectDelayMs(attempt));
      attempt += 1;
    };

    open();
    return () => {
      stopped = true;
      stopPolling();
      clearTimeout(reconnectTimer);
      clearTimeout(resyncTimer);
      clearInterval(keepaliveTimer);
      socket?.close(1000, "unmounted");
      socket = null;
    };
  }, [client, customerId, pollMs, enabled]);

  return { status, latest };
}
