"use client";

import { createContext, useContext, type ReactNode } from "react";
import type { TokenBillingClient } from "./client";

const ClientContext = createContext<TokenBillingClient | null>(null);

export interface TokenBillingProviderProps {
  client: TokenBillingClient;
  children: ReactNode;
}

/** Makes one API client available to every token billing component below it. */
export function TokenBillingProvider({ client, children }: TokenBillingProviderProps) {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

export function useTokenBillingClient(): TokenBillingClient {
  const client = useContext(ClientContext);
  if (!client) {
    throw new Error(
      "Token billing components need a <TokenBillingProvider client={...}> above them",
    );
  }
  return client;
}
