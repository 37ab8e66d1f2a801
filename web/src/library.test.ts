// @vitest-environment node
// The components must import in a Next.js server build: no window at import time, and
// every component file marked "use client".
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const NAMES = [
  "TokenPricing",
  "TokenCheckout",
  "TokenDashboard",
  "TokenBalanceCard",
  "TokenTransactionHistory",
  "PricingCalculator",
];

describe("the component library", () => {
  it("imports without a DOM and exports the seed's components", async () => {
    expect(typeof globalThis.window).toBe("undefined");
    const library: Record<string, unknown> = await import("./index");
    for (const name of [
      ...NAMES,
      "TokenCheckoutStatus",
      "TokenBillingProvider",
      "createClient",
      "ApiError",
    ]) {
      expect(typeof library[name], name).toBe("function");
    }
  });

  it('starts every component file with "use client"', () => {
    const folders = ["components", "components/parts"].map(
      (folder) => new URL(`./${folder}/`, import.meta.url),
    );
    const files = folders.flatMap((folder) =>
      readdirSync(folder)
        .filter((name) => name.endsWith(".tsx") && !name.endsWith(".test.tsx"))
        .map((name) => new URL(name, folder)),
    );
    expect(files.map((file) => file.pathname.split("/").pop())).toEqual(
      expect.arrayContaining(NAMES.map((name) => `${name}.tsx`)),
    );
    for (const file of files) {
      expect(readFileSync(file, "utf8").startsWith('"use client";\n'), file.pathname).toBe(true);
    }
  });
});
