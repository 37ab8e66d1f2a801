import "@token-billing/react/styles.css";
import "./globals.css";
import type { Metadata } from "next";
import type { ReactNode } from "react";
import { Nav } from "./nav";
import { BillingProvider } from "./providers";

export const metadata: Metadata = {
  title: "Token billing: Next.js example",
  description: "The @token-billing/react components in a Next.js App Router app",
};

// create-next-app's root layout and its Tailwind (globals.css as generated), without the
// next/font Geist fonts, which download at build time.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en" className="h-full antialiased">
      <body className="flex min-h-full flex-col">
        <BillingProvider>
          <Nav />
          <main className="mx-auto w-full max-w-6xl p-4">{children}</main>
        </BillingProvider>
      </body>
    </html>
  );
}
