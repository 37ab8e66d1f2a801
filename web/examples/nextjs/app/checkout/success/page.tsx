import { Suspense } from "react";
import { CheckoutReturn } from "../checkout-return";

export default function CheckoutSuccessPage() {
  return (
    <Suspense fallback={<p>Loading your order…</p>}>
      <CheckoutReturn outcome="success" />
    </Suspense>
  );
}
