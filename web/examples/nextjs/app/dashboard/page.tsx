"use client";

import { TokenDashboard } from "@token-billing/react";
import Link from "next/link";
import { useSession } from "../session";

export default function DashboardPage() {
  const session = useSession();
  if (!session) {
    return (
      <p>
        <Link href="/sign-in">Sign in</Link> to see your tokens.
      </p>
    );
  }
  return <TokenDashboard customerId={session.customerId} />;
}
