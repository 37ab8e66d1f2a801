import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import type { TokenBillingClient } from "../api/client";
import { TokenBillingProvider } from "../api/context";

export function renderWithClient(client: TokenBillingClient, ui: ReactElement) {
  return render(<TokenBillingProvider client={client}>{ui}</TokenBillingProvider>);
}
