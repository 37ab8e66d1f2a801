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
  "TokenAutoTopUp",
  "TokenUsageByVm",
  "VmLimitsForm",
  "TokenVmSpending",
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

  it('marks "use client" the modules a Server Component may reach, and nothing else', () => {
    // The boundary: the exported components, the provider's context and the hooks. The
    // parts, the API client and the formatting helpers run wherever they are imported from.
    const marked = [
      ...NAMES.map((name) => `components/${name}.tsx`),
      "api/context.tsx",
      "api/useApi.ts",
      "api/useLiveBalance.ts",
    ];
    const sources = readdirSync(new URL("./", import.meta.url), { recursive: true })
      .map(String)
      .filter((path) => /\.tsx?$/.test(path) && !/\.test\.tsx?$|\.d\.ts$/.test(path))
      .filter((path) => !path.startsWith("demo/") && !path.startsWith("test/"));
    expect(sources).toEqual(expect.arrayContaining(marked));
    for (const path of sources) {
      const text = readFileSync(new URL(`./${path}`, import.meta.url), "utf8");
      expect(text.startsWith('"use client";\n'), path).toBe(marked.includes(path));
    }
  });
});
