// Builds the library into dist/: one ES module per source module (esbuild; imports stay
// imports, so "use client" stays on the files that have it and bundlers tree-shake what an
// app does not use), type declarations (tsc --emitDeclarationOnly), and styles.css.
// `npm pack` runs this first (prepack); dist/ is all the package ships.
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const web = fileURLToPath(new URL("..", import.meta.url));
const src = join(web, "src");
const dist = join(web, "dist");
// The package's entry points (package.json `exports`); everything they import comes along.
const ENTRIES = ["index.ts", "client.ts", "components.ts", "hooks.ts"];
const NOT_SHIPPED = /\.test\.tsx?$|\.d\.ts$/;

async function sourceFiles(folder) {
  const files = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) {
      // The demo app and the test helpers are not part of the library.
      if (!["demo", "test"].includes(entry.name)) files.push(...(await sourceFiles(path)));
    } else if (/\.tsx?$/.test(entry.name) && !NOT_SHIPPED.test(entry.name)) {
      files.push(path);
    }
  }
  return files;
}

/** Each module is its own output: relative imports point at the sibling `.js` file (ESM
 * needs the extension), packages (react) stay imports for the app's bundler. */
const keepImports = {
  name: "keep-imports",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      if (!args.path.startsWith(".")) return { path: args.path, external: true };
      const base = join(args.resolveDir, args.path);
      const isFile = [".ts", ".tsx"].some((ext) => existsSync(base + ext));
      if (!isFile && !(existsSync(base) && statSync(base).isDirectory())) {
        return { errors: [{ text: `cannot resolve ${args.path} from ${args.importer}` }] };
      }
      return { path: isFile ? `${args.path}.js` : `${args.path}/index.js`, external: true };
    });
  },
};

await rm(dist, { recursive: true, force: true });
const files = await sourceFiles(src);
for (const entry of ENTRIES) {
  if (!files.includes(join(src, entry))) throw new Error(`entry src/${entry} is missing`);
}
await esbuild.build({
  absWorkingDir: web,
  entryPoints: files,
  outbase: "src",
  outdir: "dist",
  bundle: true,
  plugins: [keepImports],
  format: "esm",
  platform: "neutral",
  target: ["es2022"],
  jsx: "automatic",
  charset: "utf8",
  logLevel: "warning",
});
execFileSync(join(web, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], {
  cwd: web,
  stdio: "inherit",
});
// tsc never copies a .d.ts it reads: the generated API schema goes along by hand.
await mkdir(join(dist, "api"), { recursive: true });
await copyFile(join(src, "api/schema.d.ts"), join(dist, "api/schema.d.ts"));
await copyFile(join(src, "styles.css"), join(dist, "styles.css"));

// tsc writes declaration imports as the sources have them ("./api/client"); give them the
// `.js` extension the JavaScript has, so `moduleResolution: "nodenext"` resolves them too.
const RELATIVE = /(from\s+|import\()"(\.{1,2}\/[^"]+)"/g;
for (const name of await readdir(dist, { recursive: true })) {
  if (!name.endsWith(".d.ts")) continue;
  const path = join(dist, name);
  const text = await readFile(path, "utf8");
  const fixed = text.replace(RELATIVE, (whole, lead, specifier) => {
    const base = join(dirname(path), specifier);
    if (existsSync(`${base}.d.ts`)) return `${lead}"${specifier}.js"`;
    if (existsSync(join(base, "index.d.ts"))) return `${lead}"${specifier}/index.js"`;
    throw new Error(`${name}: cannot resolve ${specifier}`);
  });
  if (fixed !== text) await writeFile(path, fixed);
}

// The declarations as an app's compiler reads them: nodenext resolution, skipLibCheck off.
execFileSync(join(web, "node_modules/.bin/tsc"), ["-p", "tsconfig.declarations.json"], {
  cwd: web,
  stdio: "inherit",
});

const shipped = (await readdir(dist, { recursive: true })).filter((name) =>
  statSync(join(dist, name)).isFile(),
);
console.log(`built dist/: ${shipped.length} files from ${files.length} modules`);
