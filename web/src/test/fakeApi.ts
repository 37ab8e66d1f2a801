// A stand-in for `fetch` that answers like the API: routes by "METHOD /path", records every
// request, and lets a test reply with JSON, an error status or a network failure.
import { vi } from "vitest";
import { createClient, type TokenBillingClient } from "../api/client";

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
  /** The request's mode: "no-cors" for the client's reachability probe. */
  mode: RequestMode | undefined;
}

export type Answer = { status?: number; json?: unknown; fail?: true };
export type Route = (request: Recorded) => Answer | Promise<Answer>;

export function fakeApi(routes: Record<string, Route | Answer>) {
  const requests: Recorded[] = [];
  const fetchImpl = vi.fn(
    async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const url = new URL(String(input), "http://api.test");
      const method = (init?.method ?? "GET").toUpperCase();
      const recorded: Recorded = {
        method,
        path: url.pathname,
        query: url.searchParams,
        headers: new Headers(init?.headers),
        body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
        mode: init?.mode,
      };
      requests.push(recorded);
      const route = routes[`${method} ${url.pathname}`];
      if (!route) return new Response(JSON.stringify({ message: "Not Found" }), { status: 404 });
      const answer = typeof route === "function" ? await route(recorded) : route;
      if (answer.fail) throw new TypeError("Failed to fetch");
      return new Response(answer.json === undefined ? "" : JSON.stringify(answer.json), {
        status: answer.status ?? 200,
        headers: { "Content-Type": "application/json" },
      });
    },
  );
  const client: TokenBillingClient = createClient({
    baseUrl: "http://api.test",
    getToken: () => "token-a",
    fetch: fetchImpl,
  });
  return { client, requests, fetchImpl };
}
