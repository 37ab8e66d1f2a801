// Builds the demo app into demo-dist/: one hashed JS and CSS bundle (esbuild), index.html
// pointing at them, and the rest of public/ (config.json) copied as is. (dist/ is the
// library's: scripts/build-lib.mjs.)
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const web = fileURLToPath(new URL("..", import.meta.url));
const dist = `${web}demo-dist`;

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: web,
  entryPoints: { app: "src/demo/main.tsx" },
  outdir: "demo-dist",
  entryNames: "[name]-[hash]",
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  define: { "process.env.NODE_ENV": '"production"' },
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
const js = outputs.find((name) => name.startsWith("app-") && name.endsWith(".js"));
const css = outputs.find((name) => name.startsWith("app-") && name.endsWith(".css"));
if (!js || !css) throw new Error(`esbuild wrote no app bundle: ${outputs.join(", ")}`);

await cp(`${web}public`, dist, {
  recursive: true,
  filter: (source) => !source.endsWith("index.html"),
});
const page = await readFile(`${web}public/index.html`, "utf8");
await writeFile(`${dist}/index.html`, page.replace("%APP_JS%", js).replace("%APP_CSS%", css));

const sizes = outputs
  .filter((name) => !name.endsWith(".map"))
  .map((name) => `${name} ${(result.metafile.outputs[`demo-dist/${name}`]?.bytes ?? 0) / 1000} kB`);
console.log(`built demo-dist/: index.html, ${sizes.join(", ")}`);
