"use client";

import { TokenCheckoutStatus } from "@token-billing/react";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useSession } from "../session";

/** The page Stripe returns to: the API added `order_id` to the URL. It reads the query, so
 * its page renders it inside <Suspense> (Next.js prerenders the rest of the page). */
export function CheckoutReturn({ outcome }: { outcome: "success" | "cancel" }) {
  const orderId = useSearchParams().get("order_id");
  const session = useSession();
  if (!session) {
    return (
      <p>
        <Link href="/sign-in">Sign in</Link> to see your order.
      </p>
    );
  }
  return (
    <>
      <TokenCheckoutStatus customerId={session.customerId} orderId={orderId} outcome={outcome} />
      <p>
        <Link href="/dashboard">Go to your dashboard</Link>
      </p>
    </>
  );
}
