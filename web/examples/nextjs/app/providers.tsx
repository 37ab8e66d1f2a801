"use client";

// The provider wiring: a Client Component creates the API client, so `getToken` (a
// function) never crosses from a Server Component; the root layout only renders this.
import { createClient, TokenBillingProvider } from "@token-billing/react";
import { useState, type ReactNode } from "react";
import { API_BASE_URL, SOCKET_URL } from "./config";
import { currentToken } from "./session";

export function BillingProvider({ children }: { children: ReactNode }) {
  const [client] = useState(() =>
    createClient({ baseUrl: API_BASE_URL, socketUrl: SOCKET_URL, getToken: currentToken }),
  );
  return <TokenBillingProvider client={client}>{children}</TokenBillingProvider>;
}
