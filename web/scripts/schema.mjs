// Generates src/api/schema.d.ts from ../openapi.json with openapi-typescript, or, with
// --check, fails when the committed file differs from what openapi.json generates now.
//
//   node scripts/schema.mjs           # write src/api/schema.d.ts
//   node scripts/schema.mjs --check   # exit 1 when it is stale
//
// Components that no path reaches and that hold a $ref to nothing are left out before
// generation (printed as a warning): openapi-typescript refuses a document with a dangling
// $ref, and such a component cannot shape any request or reply. A dangling $ref that a path
// does reach is an error.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const SOURCE = fileURLToPath(new URL("../../openapi.json", import.meta.url));
const TARGET = fileURLToPath(new URL("../src/api/schema.d.ts", import.meta.url));
const PREFIX = "#/components/";

/** Every internal $ref string found anywhere under `node`. */
function refsIn(node, found = new Set()) {
  if (Array.isArray(node)) {
    for (const item of node) refsIn(item, found);
  } else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string" && value.startsWith(PREFIX)) {
        found.add(value);
      } else {
        refsIn(value, found);
      }
    }
  }
  return found;
}

/** The component a ref names, e.g. "#/components/schemas/Error" -> document.components.schemas.Error. */
function resolve(document, ref) {
  const [section, name] = ref.slice(PREFIX.length).split("/");
  return document.components?.[section]?.[name];
}

/** Refs reachable from the paths, following refs through components. */
function reachable(document) {
  const seen = new Set();
  const queue = [...refsIn(document.paths ?? {})];
  while (queue.length > 0) {
    const ref = queue.pop();
    if (seen.has(ref)) continue;
    seen.add(ref);
    const target = resolve(document, ref);
    if (target !== undefined) queue.push(...refsIn(target));
  }
  return seen;
}

function prune(document) {
  const used = reachable(document);
  const dangling = [...used].filter((ref) => resolve(document, ref) === undefined);
  if (dangling.length > 0) {
    throw new Error(`openapi.json: paths reach undefined components: ${dangling.join(", ")}`);
  }
  for (const [section, entries] of Object.entries(document.components ?? {})) {
    for (const [name, component] of Object.entries(entries)) {
      const ref = `${PREFIX}${section}/${name}`;
      const broken = [...refsIn(component)].filter((r) => resolve(document, r) === undefined);
      if (broken.length > 0 && !used.has(ref)) {
        console.warn(
          `warning: openapi.json: ${ref} (used by no path) refers to ${broken.join(", ")}, ` +
            "which is not defined; left out of the generated types",
        );
        delete entries[name];
      }
    }
  }
  return document;
}

const document = prune(JSON.parse(readFileSync(SOURCE, "utf8")));
const generated = COMMENT_HEADER + astToString(await openapiTS(document, { silent: true }));

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(TARGET, "utf8");
  } catch {
    // missing: stale
  }
  if (committed !== generated) {
    console.error(
      "src/api/schema.d.ts is stale: openapi.json changed. Run `npm run gen:schema` in web/ " +
        "(or `make web-schema`) and commit the result.",
    );
    process.exit(1);
  }
  console.log("src/api/schema.d.ts matches openapi.json");
} else {
  writeFileSync(TARGET, generated);
  console.log(`wrote ${TARGET}`);
}
