import "@token-billing/react/styles.css";
import "./example.css";
import type { Metadata } from "next";
import type { ReactNode } from "react";
import { Nav } from "./nav";
import { BillingProvider } from "./providers";

export const metadata: Metadata = {
  title: "Token billing: Next.js example",
  description: "The @token-billing/react components in a Next.js App Router app",
};

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <BillingProvider>
          <Nav />
          <main className="example-main">{children}</main>
        </BillingProvider>
      </body>
    </html>
  );
}
