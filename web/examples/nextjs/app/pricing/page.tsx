"use client";

import { TokenPricing } from "@token-billing/react";
import { useSession } from "../session";

export default function PricingPage() {
  const session = useSession();
  return <TokenPricing customerId={session?.customerId ?? null} signInHref="/sign-in" />;
}
