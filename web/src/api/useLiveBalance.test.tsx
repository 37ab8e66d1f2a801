import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TokenBalanceCard } from "../components/TokenBalanceCard";
import { TokenDashboard } from "../components/TokenDashboard";
import { TokenTransactionHistory } from "../components/TokenTransactionHistory";
import { fakeApi } from "../test/fakeApi";
import { balance, dashboard, transaction } from "../test/fixtures";
import { renderWithClient } from "../test/render";
import { BALANCE_SUBPROTOCOL, createClient } from "./client";
import { newestBalance, reconnectDelayMs, type BalanceMessage } from "./useLiveBalance";

const DASHBOARD = "GET /api/v1/customers/cust_a/dashboard";
const BALANCE = "GET /api/v1/customers/cust_a/tokens";
const HISTORY = "GET /api/v1/customers/cust_a/tokens/transactions";
const EMPTY_PAGE = { object: "list", data: [], has_more: false, next_cursor: null };

/** A WebSocket the test drives: open, deliver messages, close. */
class FakeSocket {
  static readonly OPEN = 1;
  static opened: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.opened.push(this);
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(): void {
    this.readyState = 3;
  }
  accept(): void {
    this.readyState = 1;
    act(() => this.onopen?.());
  }
  deliver(message: Partial<BalanceMessage>): void {
    act(() => this.onmessage?.({ data: JSON.stringify(message) }));
  }
  drop(): void {
    this.readyState = 3;
    act(() => this.onclose?.());
  }
}

function message(version: number, availableMt: number): BalanceMessage {
  const tokens = String(availableMt / 1000);
  return {
    type: "balance",
    customer_id: "cust_a",
    balance: tokens,
    balance_mt: availableMt,
    available: tokens,
    available_mt: availableMt,
    held: "0",
    held_mt: 0,
    low_balance: availableMt < 500_000,
    version,
    at: "2026-12-01T10:00:00.000000Z",
  };
}

function liveClient(routes: Parameters<typeof fakeApi>[0], socketUrl = "ws://socket.test") {
  const api = fakeApi(routes);
  const client = createClient({
    baseUrl: "http://api.test",
    getToken: () => "token-a",
    fetch: api.fetchImpl,
    socketUrl,
  });
  return { ...api, client };
}

beforeEach(() => {
  FakeSocket.opened = [];
  vi.stubGlobal("WebSocket", FakeSocket);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("useLiveBalance", () => {
  it("opens the socket with the token as a subprotocol, never in the URL", async () => {
    const api = liveClient({
      [BALANCE]: { json: balance({ version: 2 }) },
    });
    renderWithClient(api.client, <TokenBalanceCard customerId="cust_a" />);
    await screen.findByTestId("available-tokens");
    const [socket] = FakeSocket.opened;
    expect(socket?.url).toBe("ws://socket.test?customer_id=cust_a");
    expect(socket?.protocols).toEqual([BALANCE_SUBPROTOCOL, "token-a"]);
  });

  it("updates the dashboard's balance live and never goes back to an older version", async () => {
    const api = liveClient({
      [DASHBOARD]: {
        json: dashboard({
          balance: balance({ available: "1000", available_mt: 1_000_000, version: 5 }),
        }),
      },
      [HISTORY]: { json: EMPTY_PAGE },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    expect(await screen.findByTestId("available-tokens")).toHaveProperty("textContent", "1,000");
    const socket = FakeSocket.opened[0]!;
    expect(screen.getByTestId("live-status").dataset.status).toBe("connecting");
    socket.accept();
    expect(screen.getByTestId("live-status").textContent).toBe("Live");

    socket.deliver(message(4, 1_500_000)); // older than the dashboard's own version 5
    expect(screen.getByTestId("available-tokens").textContent).toBe("1,000");
    socket.deliver(message(7, 990_000));
    expect(screen.getByTestId("available-tokens").textContent).toBe("990");
    socket.deliver(message(6, 995_000)); // arrived late: dropped
    expect(screen.getByTestId("available-tokens").textContent).toBe("990");
    socket.deliver(message(8, 400_000));
    expect(screen.getByTestId("available-tokens").textContent).toBe("400");
    expect(screen.getByTestId("low-balance-warning")).toBeTruthy();
    socket.deliver({ ...message(9, 1), customer_id: "cust_b" }); // not this customer's
    expect(screen.getByTestId("available-tokens").textContent).toBe("400");
    // The parts a message does not carry (history, holds) follow: one resync, throttled.
    await waitFor(
      () => expect(api.requests.filter((r) => r.path.endsWith("/dashboard")).length).toBe(2),
      { timeout: 4000 },
    );
  });

  it("polls the balance while the socket is closed, reconnects with backoff, then checks once", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let version = 5;
    const api = liveClient({
      [DASHBOARD]: () => ({ json: dashboard({ balance: balance({ version }) }) }),
      [BALANCE]: () => ({ json: balance({ version }) }),
      [HISTORY]: { json: EMPTY_PAGE },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    await screen.findByTestId("available-tokens");
    const count = (suffix: string) => api.requests.filter((r) => r.path.endsWith(suffix)).length;
    FakeSocket.opened[0]!.accept();
    FakeSocket.opened[0]!.drop();
    expect(screen.getByTestId("live-status").dataset.status).toBe("polling");
    await act(async () => {
      await vi.advanceTimersByTimeAsync(15_000);
    });
    expect(count("/tokens")).toBeGreaterThan(0); // polled the balance, not the dashboard
    expect(count("/dashboard")).toBe(1); // nothing changed: nothing reloaded
    expect(FakeSocket.opened.length).toBeGreaterThan(1); // reconnected within its backoff
    const again = FakeSocket.opened.at(-1)!;
    const polls = count("/tokens");
    version = 6; // a debit while the socket was closed: never sent over it
    again.accept();
    expect(screen.getByTestId("live-status").textContent).toBe("Live");
    await waitFor(() => expect(count("/tokens")).toBe(polls + 1)); // one check after the gap
    await waitFor(() => expect(count("/dashboard")).toBe(2)); // it changed: one reload
  });

  it("shares one socket among the components of a customer, and the history follows it", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const changes: number[] = [];
    const api = liveClient({
      [BALANCE]: { json: balance({ version: 5, available: "1000", available_mt: 1_000_000 }) },
      [HISTORY]: { json: EMPTY_PAGE },
    });
    renderWithClient(
      api.client,
      <>
        <TokenBalanceCard customerId="cust_a" onBalanceChange={(b) => changes.push(b.version)} />
        <TokenTransactionHistory customerId="cust_a" />
      </>,
    );
    await screen.findByTestId("available-tokens");
    await screen.findByText("No transactions yet.");
    expect(FakeSocket.opened).toHaveLength(1);
    const socket = FakeSocket.opened[0]!;
    socket.accept();
    const history = () => api.requests.filter((r) => r.path.endsWith("/transactions")).length;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(120_000);
    });
    expect(history()).toBe(1); // a quiet account: no request at all
    expect(api.requests.filter((r) => r.path.endsWith("/tokens"))).toHaveLength(1);

    socket.deliver(message(6, 950_000));
    expect(screen.getByTestId("available-tokens").textContent).toBe("950");
    await waitFor(() => expect(history()).toBe(2)); // the history asked for its first page
    expect(changes).toEqual([6]);
    socket.deliver(message(6, 950_000)); // the same change again (a retried stream batch)
    await act(async () => {
      await vi.advanceTimersByTimeAsync(5_000);
    });
    expect(history()).toBe(2);
  });

  it("puts a new history entry on top and keeps the pages loaded with Load more", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let firstPage = [transaction("txn_2"), transaction("txn_1")];
    const api = liveClient({
      [HISTORY]: (request) =>
        request.query.get("cursor")
          ? { json: { ...EMPTY_PAGE, data: [transaction("txn_0")] } }
          : { json: { ...EMPTY_PAGE, data: firstPage, has_more: true, next_cursor: "c1" } },
    });
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
    renderWithClient(api.client, <TokenTransactionHistory customerId="cust_a" pageSize={2} />);
    await user.click(await screen.findByRole("button", { name: "Load more" }));
    await waitFor(() => expect(screen.getAllByRole("listitem")).toHaveLength(3));
    FakeSocket.opened[0]!.accept();
    firstPage = [transaction("txn_3"), transaction("txn_2")];
    FakeSocket.opened[0]!.deliver(message(9, 1_000));
    await waitFor(() => expect(screen.getAllByRole("listitem")).toHaveLength(4));
    const ids = screen.getAllByRole("listitem").map((item) => item.dataset.id);
    expect(ids).toEqual(["txn_3", "txn_2", "txn_1", "txn_0"]);
  });

  it("without a socket, reloads the history only when the polled balance moved", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let version = 5;
    const api = liveClient(
      {
        [BALANCE]: () => ({ json: balance({ version }) }),
        [HISTORY]: { json: EMPTY_PAGE },
      },
      "",
    );
    renderWithClient(api.client, <TokenTransactionHistory customerId="cust_a" />);
    await screen.findByText("No transactions yet.");
    const history = () => api.requests.filter((r) => r.path.endsWith("/transactions")).length;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(45_000);
    });
    expect(history()).toBe(1);
    version = 6;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(15_000);
    });
    await waitFor(() => expect(history()).toBe(2));
  });

  it("does not reload the dashboard for a change it already shows", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const api = liveClient({
      [DASHBOARD]: { json: dashboard({ balance: balance({ version: 5 }) }) },
      [HISTORY]: { json: EMPTY_PAGE },
    });
    renderWithClient(api.client, <TokenDashboard customerId="cust_a" />);
    await screen.findByTestId("available-tokens");
    FakeSocket.opened[0]!.accept();
    FakeSocket.opened[0]!.deliver(message(5, 1)); // sent for the change the reply holds
    await act(async () => {
      await vi.advanceTimersByTimeAsync(5_000);
    });
    expect(api.requests.filter((r) => r.path.endsWith("/dashboard"))).toHaveLength(1);
  });

  it("polls when no socket is configured", async () => {
    const api = liveClient({ [BALANCE]: { json: balance() } }, "");
    renderWithClient(api.client, <TokenBalanceCard customerId="cust_a" />);
    await screen.findByTestId("available-tokens");
    expect(FakeSocket.opened).toEqual([]);
    expect(screen.getByTestId("live-status").dataset.status).toBe("polling");
  });

  it("backs off exponentially with full jitter, capped at 30 s", () => {
    expect(reconnectDelayMs(0, () => 0.999)).toBe(999);
    expect(reconnectDelayMs(3, () => 0.999)).toBe(7992);
    expect(reconnectDelayMs(20, () => 0.999)).toBe(29_970);
    expect(reconnectDelayMs(5, () => 0)).toBe(250);
  });

  it("newestBalance keeps the HTTP reply unless the live message is newer", () => {
    const http = balance({ version: 5, available_mt: 1_000_000 });
    expect(newestBalance(http, message(5, 1))).toBe(http);
    expect(newestBalance(http, null)).toBe(http);
    const merged = newestBalance(http, message(6, 250_000));
    expect(merged.available_mt).toBe(250_000);
    expect(merged.version).toBe(6);
    expect(merged.estimated_hours_remaining).toBe(2);
    expect(merged.active_holds).toBe(http.active_holds);
  });
});
