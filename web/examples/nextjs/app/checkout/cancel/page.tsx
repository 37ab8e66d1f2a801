import { Suspense } from "react";
import { CheckoutReturn } from "../checkout-return";

export default function CheckoutCancelPage() {
  return (
    <Suspense fallback={<p>Loading your order…</p>}>
      <CheckoutReturn outcome="cancel" />
    </Suspense>
  );
}
