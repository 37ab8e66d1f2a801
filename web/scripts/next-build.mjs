// `next build` of examples/nextjs (type check and static prerender included), failing on
// any warning as well as on errors: the package must build in a Next.js app without noise.
// The billing API's URL is inlined from NEXT_PUBLIC_BILLING_API_URL (the e2e run passes its
// dev server's).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const example = fileURLToPath(new URL("../examples/nextjs/", import.meta.url));
// Next.js marks warnings with ⚠ (and some with "warn"); "Failed to compile" and type
// errors make it exit non-zero on their own.
const WARNING = /⚠|\bwarn(ing)?\b/i;
// Notices about the machine, not the code: with CI set and no .next/cache (a fresh clone),
// Next.js asks for a build cache between CI runs.
const ABOUT_THE_MACHINE = [/No build cache found/];
const BUILD_TIMEOUT_MS = 240_000;

const started = Date.now();
const child = spawn(`${example}node_modules/.bin/next`, ["build"], {
  cwd: example,
  env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
  stdio: ["ignore", "pipe", "pipe"],
});
const timer = setTimeout(() => child.kill("SIGKILL"), BUILD_TIMEOUT_MS);
let output = "";
for (const stream of [child.stdout, child.stderr]) {
  stream.setEncoding("utf8");
  stream.on("data", (text) => {
    output += text;
    process.stdout.write(text);
  });
}
const code = await new Promise((done) => child.on("close", (status) => done(status ?? 1)));
clearTimeout(timer);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
const warnings = output
  .split("\n")
  .filter((line) => WARNING.test(line) && !ABOUT_THE_MACHINE.some((notice) => notice.test(line)));
if (code !== 0) {
  console.error(`next build failed (exit ${code}) after ${seconds} s`);
  process.exit(1);
}
if (warnings.length > 0) {
  console.error(`next build printed ${warnings.length} warning(s):\n${warnings.join("\n")}`);
  process.exit(1);
}
console.log(`next build: no errors, no warnings, ${seconds} s`);
