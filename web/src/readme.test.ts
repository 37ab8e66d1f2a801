// @vitest-environment node
// The README's integration code builds as written: each Next.js block is the example app's
// file of that name (which `make e2e` builds and drives), and the Vite block is built by Vite
// against the packed tarball, as an app that installed it would be.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const web = fileURLToPath(new URL("..", import.meta.url));
const readme = readFileSync(join(web, "README.md"), "utf8");
const section = readme.slice(
  readme.indexOf("### Use the components in your app"),
  readme.indexOf("### Configuration"),
);
// A file's block names it on its first line: `// app/x.tsx` (or `/* app/x.css */`).
const blocks = [
  ...section.matchAll(/```(?:tsx|ts|css)\n(?:\/\/ (\S+)|\/\* (\S+) \*\/)\n([\s\S]*?)```/g),
].map(([, path, cssPath, code]) => ({ path: (path ?? cssPath) as string, code: code as string }));
const example = join(web, "examples/nextjs");
const work: string[] = [];

afterAll(() => {
  for (const folder of work) rmSync(folder, { recursive: true, force: true });
});

describe("web/README's integration section", () => {
  it("shows the Next.js example's own files", () => {
    const nextBlocks = blocks.filter((block) => block.path.startsWith("app/"));
    expect(nextBlocks.map((block) => block.path)).toEqual(
      expect.arrayContaining([
        "app/providers.tsx",
        "app/layout.tsx",
        "app/pricing/page.tsx",
        "app/dashboard/page.tsx",
        "app/checkout/success/page.tsx",
      ]),
    );
    for (const { path, code } of nextBlocks) {
      const file = readFileSync(join(example, path), "utf8");
      expect(code, path).toBe(file);
    }
  });

  it("shows or names every file the example's code imports: the steps are complete", () => {
    const nextBlocks = blocks.filter((block) => block.path.startsWith("app/"));
    const shown = new Set(nextBlocks.map((block) => block.path));
    const imported = new Set<string>();
    for (const { path, code } of nextBlocks) {
      for (const [, target] of code.matchAll(/(?:from|import) "(\.{1,2}\/[^"]+)"/g)) {
        const base = posix.join(posix.dirname(path), target as string);
        const file = ["", ".ts", ".tsx", ".css"]
          .map((extension) => base + extension)
          .find((candidate) => existsSync(join(example, candidate)));
        expect(file, `${path} imports ${target}, which the example lacks`).toBeDefined();
        imported.add(file as string);
      }
    }
    expect([...imported].length).toBeGreaterThan(3);
    for (const file of imported) {
      // Shown as a block, or named (create-next-app's own files, e.g. app/globals.css).
      expect(shown.has(file) || section.includes(`\`${file}\``), file).toBe(true);
    }
    // The example's code is all on the page but a home page of links and its development
    // sign-in, which it names.
    const files = readdirSync(join(example, "app"), { recursive: true })
      .map((entry) => `app/${String(entry)}`)
      .filter((entry) => /\.(tsx?|css)$/.test(entry));
    const notShown = files.filter((file) => !shown.has(file));
    expect(notShown.sort()).toEqual([
      "app/checkout/cancel/page.tsx",
      "app/globals.css",
      "app/page.tsx",
      "app/sign-in/page.tsx",
    ]);
    for (const file of notShown) expect(section, file).toContain(`\`${file}\``);
    expect(section).toContain("NEXT_PUBLIC_BILLING_SOCKET_URL");
    expect(section).toContain("integrity");
  });

  it("has a Vite app that builds against the packed tarball, without the unused components", async () => {
    const main = blocks.find((block) => block.path === "src/main.tsx");
    expect(main, "the Vite block").toBeDefined();
    const manifest = JSON.parse(readFileSync(join(web, "package.json"), "utf8")) as {
      version: string;
    };
    const tarball = join(web, `.pack/token-billing-react-${manifest.version}.tgz`);
    const app = mkdtempSync(join(tmpdir(), "token-billing-vite-"));
    work.push(app);
    // The app's node_modules: the tarball unpacked, React from this folder's install.
    const scope = join(app, "node_modules/@token-billing");
    mkdirSync(scope, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", scope]);
    execFileSync("mv", [join(scope, "package"), join(scope, "react")]);
    for (const name of ["react", "react-dom", "scheduler"]) {
      symlinkSync(join(web, "node_modules", name), join(app, "node_modules", name));
    }
    mkdirSync(join(app, "src"));
    writeFileSync(join(app, "src/main.tsx"), main?.code ?? "");
    writeFileSync(
      join(app, "index.html"),
      '<!doctype html><div id="root"></div><script type="module" src="/src/main.tsx"></script>\n',
    );

    const { build } = await import("vite");
    await build({
      root: app,
      configFile: false,
      logLevel: "silent",
      esbuild: { jsx: "automatic" },
      build: { outDir: join(app, "out"), minify: false },
    });

    const assets = join(app, "out/assets");
    const files = readdirSync(assets);
    const js = files.filter((name) => name.endsWith(".js"));
    const css = files.filter((name) => name.endsWith(".css"));
    expect([js.length, css.length]).toEqual([1, 1]);
    const bundle = readFileSync(join(assets, js[0] as string), "utf8");
    expect(bundle).toContain("Token packs"); // TokenPricing
    expect(bundle).toContain("Starting checkout"); // its TokenCheckout
    // sideEffects: the dashboard and its parts, unused here, are not in the bundle.
    expect(bundle).not.toContain("Reserved by running VMs");
    expect(bundle).not.toContain("Refresh the dashboard");
    expect(readFileSync(join(assets, css[0] as string), "utf8")).toContain(".tb-pricing");
  }, 60_000);
});
