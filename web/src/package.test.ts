// @vitest-environment node
// The packed tarball (`make web-package`: what the examples install) ships the built library
// and nothing else: no test files, no sources outside dist/, every export present, and
// "use client" on the same modules as in the sources.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const web = fileURLToPath(new URL("..", import.meta.url));
const manifest = JSON.parse(readFileSync(join(web, "package.json"), "utf8")) as {
  name: string;
  version: string;
  exports: Record<string, string | { types: string; default: string }>;
};
const tarballName = `${manifest.name.replace(/^@/, "").replace("/", "-")}-${manifest.version}.tgz`;
const tarball = join(web, ".pack", tarballName);
// npm puts these beside `files` whatever it says.
const ALWAYS_PACKED = ["package/package.json", "package/README.md", "package/LICENSE"];

let unpacked: string;
let entries: string[];

beforeAll(() => {
  if (!existsSync(tarball)) throw new Error(`${tarball} is missing: run \`make web-package\``);
  entries = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line && !line.endsWith("/"));
  unpacked = mkdtempSync(join(tmpdir(), "token-billing-pack-"));
  execFileSync("tar", ["-xzf", tarball, "-C", unpacked]);
});

afterAll(() => {
  if (unpacked) rmSync(unpacked, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("holds dist/ and its manifest only, and no test files", () => {
    const outside = entries.filter(
      (entry) => !entry.startsWith("package/dist/") && !ALWAYS_PACKED.includes(entry),
    );
    expect(outside).toEqual([]);
    const tests = entries.filter((entry) =>
      /\.test\.|\/test\/|\/e2e\/|\/demo\/|\/examples\/|setup\.|fixtures|fakeApi/.test(entry),
    );
    expect(tests).toEqual([]);
    const sources = entries.filter((entry) => /\.tsx?$/.test(entry) && !entry.endsWith(".d.ts"));
    expect(sources).toEqual([]);
    expect(entries).toContain("package/dist/index.js");
    expect(entries).toContain("package/dist/styles.css");
  });

  it("has every export, its types beside it, and react as a peer only", () => {
    const packed = JSON.parse(readFileSync(join(unpacked, "package/package.json"), "utf8")) as {
      exports: typeof manifest.exports;
      peerDependencies: Record<string, string>;
      dependencies?: Record<string, string>;
      sideEffects: string[];
      private: boolean;
    };
    expect(Object.keys(packed.exports)).toEqual(
      expect.arrayContaining([".", "./components", "./hooks", "./client", "./styles.css"]),
    );
    for (const [subpath, target] of Object.entries(packed.exports)) {
      const files = typeof target === "string" ? [target] : [target.types, target.default];
      for (const file of files) {
        expect(entries, `${subpath} -> ${file}`).toContain(`package/${file.replace(/^\.\//, "")}`);
      }
    }
    expect(packed.dependencies ?? {}).toEqual({});
    expect(Object.keys(packed.peerDependencies).sort()).toEqual(["react", "react-dom"]);
    expect(packed.sideEffects).toEqual(["*.css"]);
    expect(packed.private).toBe(true);
  });

  it('keeps "use client" on the component, context and hook modules only', () => {
    const marked = entries
      .filter((entry) => entry.endsWith(".js"))
      .filter((entry) => readFileSync(join(unpacked, entry), "utf8").startsWith('"use client";\n'))
      .map((entry) => entry.replace("package/dist/", ""))
      .sort();
    expect(marked).toEqual([
      "api/context.js",
      "api/useApi.js",
      "api/useLiveBalance.js",
      "components/PricingCalculator.js",
      "components/TokenAutoTopUp.js",
      "components/TokenBalanceCard.js",
      "components/TokenCheckout.js",
      "components/TokenDashboard.js",
      "components/TokenPricing.js",
      "components/TokenTransactionHistory.js",
      "components/TokenUsageByVm.js",
      "components/TokenVmSpending.js",
      "components/VmLimitsForm.js",
    ]);
  });

  it("serves the API client from its own entry, without React or a DOM", async () => {
    expect(typeof globalThis.window).toBe("undefined");
    const client = (await import(
      pathToFileURL(join(unpacked, "package/dist/client.js")).href
    )) as typeof import("./client");
    const api = client.createClient({ baseUrl: "https://api.example.test" });
    expect(api).toBeInstanceOf(client.TokenBillingClient);
    expect(readFileSync(join(unpacked, "package/dist/client.js"), "utf8")).not.toContain("react");
  });

  it("is what the Next.js example's lockfile installs, read afresh on every install", () => {
    const lock = JSON.parse(
      readFileSync(join(web, "examples/nextjs/package-lock.json"), "utf8"),
    ) as { packages: Record<string, { resolved?: string; integrity?: string }> };
    const installed = lock.packages[`node_modules/${manifest.name}`];
    expect(installed?.resolved).toBe(`file:../../.pack/${tarballName}`);
    // With an integrity hash npm ci installs the tarball it cached under that hash, not the
    // one just packed: the example would test a stale build.
    expect(installed?.integrity).toBeUndefined();
  });
});
