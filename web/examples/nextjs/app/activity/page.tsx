"use client";

import { TokenBalanceCard, TokenTransactionHistory } from "@token-billing/react";
import Link from "next/link";
import { useSession } from "../session";

// The balance card and the history on their own, side by side: both follow the live
// balance (one socket between them), so a debit shows in both as it happens.
export default function ActivityPage() {
  const session = useSession();
  if (!session) {
    return (
      <p>
        <Link href="/sign-in">Sign in</Link> to see your tokens.
      </p>
    );
  }
  return (
    <div className="grid gap-4 md:grid-cols-[1fr_2fr]">
      <TokenBalanceCard customerId={session.customerId} />
      <TokenTransactionHistory customerId={session.customerId} title="Activity" />
    </div>
  );
}
