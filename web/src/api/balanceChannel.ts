// The live balance of one customer, shared by every component of one API client that shows
// it or follows it: one WebSocket however many components subscribe (see the README's
// "Real-time balance"), or, while there is none, one poll of `GET .../tokens`.
//
// Every message is the whole balance at an account `version`; anything not newer than what
// was seen is dropped, so a view never goes back. A *change* is announced (the snapshot's
// `revision` moves, at most once per RESYNC_THROTTLE_MS) only when a version above every
// one seen arrives: views that a message does not carry (history, orders, usage) reload on
// it and on nothing else, so a quiet account costs them no request at all. While the socket
// is closed the channel polls the balance, reconnects with exponential backoff and full
// jitter, and polls once when it is open again (changes made meanwhile were never sent).
//
// No React here, and nothing runs at import time: a Next.js server build imports it.
import type { Balance, TokenBillingClient } from "./client";

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
 * configured, refused, or closed and waiting to reconnect), the balance is polled. */
export type LiveStatus = "connecting" | "live" | "polling";

export interface LiveSnapshot {
  status: LiveStatus;
  /** The newest balance seen (a socket message or a poll), or null before the first. */
  latest: BalanceMessage | null;
  /** Moves when the balance changed to a version above every one seen before (throttled). */
  revision: number;
}

export const POLL_MS = 15_000;
export const RECONNECT_BASE_MS = 1_000;
export const RECONNECT_MAX_MS = 30_000;
/** API Gateway closes a socket idle for 10 minutes: a ping every 5 keeps it open. */
export const KEEPALIVE_MS = 5 * 60_000;
/** At most one announced change per this long while messages stream in. */
export const RESYNC_THROTTLE_MS = 2_000;
/** The API's estimate: whole hours at 100 tokens an hour (in milli-tokens). */
const MT_PER_ESTIMATED_HOUR = 100_000;

export const IDLE_SNAPSHOT: LiveSnapshot = { status: "connecting", latest: null, revision: 0 };

export function isBalanceMessage(value: unknown, customerId: string): value is BalanceMessage {
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
    estimated_hours_remaining: Math.max(0, Math.floor(live.available_mt / MT_PER_ESTIMATED_HOUR)),
  };
}

/** A `GET .../tokens` reply in the socket's message shape. */
function messageOf(balance: Balance): BalanceMessage {
  return {
    type: "balance",
    customer_id: balance.customer_id,
    balance: balance.balance,
    balance_mt: balance.balance_mt,
    available: balance.available,
    available_mt: balance.available_mt,
    held: balance.held,
    held_mt: balance.held_mt,
    low_balance: balance.low_balance,
    version: balance.version,
    at: new Date().toISOString(),
  };
}

export class BalanceChannel {
  private readonly listeners = new Set<() => void>();
  private current: LiveSnapshot = IDLE_SNAPSHOT;
  /** The highest version announced as a change, or the first one a view or poll reported
   * (a baseline: not itself a change). Null until either. */
  private announced: number | null = null;
  private stopped = true;
  private socket: WebSocket | null = null;
  private attempt = 0;
  private wasOpen = false;
  private polling = false;
  private lastChange = 0;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  private changeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly client: TokenBillingClient,
    readonly customerId: string,
    private readonly pollMs: number,
  ) {}

  /** useSyncExternalStore's subscribe: the first subscriber opens, the last one closes. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  };

  readonly snapshot = (): LiveSnapshot => this.current;

  /** A view loaded data at `version`: the baseline that later changes are counted from,
   * when nothing set one yet. */
  observe(version: number): void {
    if (this.announced === null) this.announced = version;
  }

  private update(change: Partial<LiveSnapshot>): void {
    this.current = { ...this.current, ...change };
    for (const listener of [...this.listeners]) listener();
  }

  private start(): void {
    this.stopped = false;
    this.open();
  }

  private stop(): void {
    this.stopped = true;
    this.stopPolling();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.changeTimer);
    this.changeTimer = undefined;
    clearInterval(this.keepaliveTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "unmounted");
    this.attempt = 0;
    this.wasOpen = false;
    this.current = { ...this.current, status: "connecting" }; // nobody left to tell
  }

  private open(): void {
    if (this.stopped) return;
    const target = this.client.balanceSocket(this.customerId);
    if (!target || typeof WebSocket === "undefined") {
      // No socket to be had: polling for good, from now (the first poll is the baseline).
      this.startPolling();
      void this.poll();
      return;
    }
    if (this.current.status !== "connecting") this.update({ status: "connecting" });
    let socket: WebSocket;
    try {
      socket = new WebSocket(target.url, target.protocols);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.stopPolling();
      this.update({ status: "live" });
      if (this.wasOpen) void this.poll(); // what changed while it was closed was never sent
      this.wasOpen = true;
      clearInterval(this.keepaliveTimer);
      this.keepaliveTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send('{"action":"ping"}');
      }, KEEPALIVE_MS);
    };
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket || typeof event.data !== "string") return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.data);
      } catch {
        return;
      }
      // No snapshot on connect: every message is a change made after the socket opened.
      if (isBalanceMessage(parsed, this.customerId)) this.accept(parsed, true);
    };
    socket.onclose = () => {
      clearInterval(this.keepaliveTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.startPolling();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), reconnectDelayMs(this.attempt));
    this.attempt += 1;
  }

  private startPolling(): void {
    if (this.current.status !== "polling") this.update({ status: "polling" });
    if (this.pollTimer === undefined) {
      this.pollTimer = setInterval(() => void this.poll(), this.pollMs);
    }
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const balance = await this.client.getBalance(this.customerId);
      if (!this.stopped) this.accept(messageOf(balance), false);
    } catch {
      // The next poll (or the socket) brings it.
    } finally {
      this.polling = false;
    }
  }

  private accept(message: BalanceMessage, fromSocket: boolean): void {
    const latest = this.current.latest;
    if (!latest || message.version > latest.version) this.update({ latest: message });
    if (this.announced === null && !fromSocket) {
      this.announced = message.version; // the first poll: where changes are counted from
      return;
    }
    if (this.announced === null || message.version > this.announced) {
      this.announced = message.version;
      this.announceChange();
    }
  }

  private announceChange(): void {
    if (this.changeTimer !== undefined) return;
    const wait = Math.max(0, this.lastChange + RESYNC_THROTTLE_MS - Date.now());
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.lastChange = Date.now();
      this.update({ revision: this.current.revision + 1 });
    }, wait);
  }
}

const channels = new WeakMap<TokenBillingClient, Map<string, BalanceChannel>>();

/** The one channel of (client, customer): every component of that client shares it. */
export function balanceChannel(
  client: TokenBillingClient,
  customerId: string,
  pollMs: number = POLL_MS,
): BalanceChannel {
  let byCustomer = channels.get(client);
  if (!byCustomer) {
    byCustomer = new Map();
    channels.set(client, byCustomer);
  }
  let channel = byCustomer.get(customerId);
  if (!channel) {
    channel = new BalanceChannel(client, customerId, pollMs);
    byCustomer.set(customerId, channel);
  }
  return channel;
}
