// Global setup of the e2e run: a dev server of its own (free ports, a temporary DynamoDB
// Local data folder); the demo app served as it is hosted, from an origin of its own
// (e2e/static-app.ts); and the Next.js example, built against that server and served by
// `next start` on another free port. Both apps are other origins than the API, as deployed,
// so every request they make passes the API's CORS. All stopped at the end. Tests read the
// URLs with inject("baseUrl"), inject("appUrl"), inject("nextUrl") and inject("socketUrl").
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { serveHostedApp, type HostedApp } from "./static-app";

declare module "vitest" {
  export interface ProvidedContext {
    /** The dev server: the HTTP API, the Invoke API and its own copy of the demo. */
    baseUrl: string;
    /** The demo app, hosted on another origin, against baseUrl. */
    appUrl: string;
    /** The live balance WebSocket of the dev server. */
    socketUrl: string;
    deadApiUrl: string;
    nextUrl: string;
    hostedAppUrl: string;
  }
}

const ROOT = resolve(__dirname, "../..");
const PYTHON = join(ROOT, ".venv/bin/python");
const WEB = join(ROOT, "web");
const NEXT_EXAMPLE = join(WEB, "examples/nextjs");
const STARTUP_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolvePort(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** In CI, where the log goes with the run's temporary folder: the dev server's refused and
 * failed API requests (the tests' own refusals among them) and why its JWT authorizer said
 * 401, so a failed run can be read from CI's output alone. */
function printRefusals(logPath: string): void {
  if (!existsSync(logPath)) return;
  const lines = readFileSync(logPath, "utf8")
    .split("\n")
    .filter((line) => /^[A-Z]+ \/api\/\S+ [45]\d\d |^JWT authorizer: |^Traceback/.test(line));
  if (lines.length === 0) return;
  console.log(`e2e: the dev server's refusals (${lines.length}, the last 60):`);
  for (const line of lines.slice(-60)) console.log(`  ${line}`);
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

async function waitUntilServing(
  what: string,
  paths: string[],
  url: string,
  child: ChildProcess,
  logPath: string,
): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const replies = await Promise.all(
        paths.map((path) => fetch(`${url}${path}`, { signal: AbortSignal.timeout(2000) })),
      );
      if (replies.every((reply) => reply.ok)) return;
    } catch {
      // not up yet
    }
    await new Promise((wait) => setTimeout(wait, 250));
  }
  const log = existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-3000) : "";
  throw new Error(`${what} did not start at ${url}. Its log (${logPath}):\n${log}`);
}

/** `next build` of the example with the dev server's URL inlined (scripts/next-build.mjs,
 * which fails on any warning), then `next start` on `port`. */
async function startNextExample(
  apiUrl: string,
  socketUrl: string,
  port: number,
  logPath: string,
): Promise<ChildProcess> {
  if (!existsSync(join(NEXT_EXAMPLE, "node_modules/.bin/next"))) {
    throw new Error(
      "the Next.js example is not installed: run `make e2e` (or `make next-example`)",
    );
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NEXT_PUBLIC_BILLING_API_URL: apiUrl,
    NEXT_PUBLIC_BILLING_SOCKET_URL: socketUrl,
    NEXT_TELEMETRY_DISABLED: "1",
  };
  const started = Date.now();
  const log = openSync(logPath, "a");
  const build = spawn(process.execPath, [join(WEB, "scripts/next-build.mjs")], {
    cwd: WEB,
    env,
    stdio: ["ignore", log, log],
  });
  const code = await new Promise<number>((done) =>
    build.on("close", (status) => done(status ?? 1)),
  );
  if (code !== 0) {
    const output = readFileSync(logPath, "utf8").slice(-4000);
    throw new Error(`next build of the example failed (${logPath}):\n${output}`);
  }
  console.log(`e2e: next build of the example in ${Date.now() - started} ms`);
  return spawn(
    join(NEXT_EXAMPLE, "node_modules/.bin/next"),
    ["start", "--port", String(port), "--hostname", "127.0.0.1"],
    { cwd: NEXT_EXAMPLE, env, stdio: ["ignore", log, log] },
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`make bootstrap\` first`);
  if (!existsSync(join(ROOT, "web/demo-dist/index.html")))
    throw new Error("web/demo-dist is not built: run `make web`");
  const work = await mkdtemp(join(tmpdir(), "token-billing-e2e-"));
  const dataDir = join(work, "dynamodb");
  const logPath = join(work, "devserver.log");
  const nextLogPath = join(work, "nextjs.log");
  const [port, ddbPort, deadPort, nextPort, appPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const nextUrl = `http://127.0.0.1:${nextPort}`;
  const appUrl = `http://127.0.0.1:${appPort}`;
  // The app as the stack hosts it, under the template's headers (hosted-app.e2e.ts starts it).
  const hostedAppUrl = `http://127.0.0.1:${await freePort()}`;
  const wsPort = await freePort(); // the WebSocket API
  const socketUrl = `ws://127.0.0.1:${wsPort}`;
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: "1" };
  delete env.STRIPE_SECRET_KEY; // offline checkout, whatever the developer's shell holds
  delete env.STRIPE_WEBHOOK_SECRET;
  const log = openSync(logPath, "a");
  const child = spawn(
    PYTHON,
    [
      "-m",
      "local.devserver",
      "--port",
      String(port),
      "--ddb-port",
      String(ddbPort),
      "--ws-port",
      String(wsPort),
      "--data-dir",
      dataDir,
      // The apps' origins: browsers there may call the API, and Checkout return there.
      "--cors-origins",
      `${appUrl},${nextUrl},${hostedAppUrl}`,
    ],
    { cwd: ROOT, env, stdio: ["ignore", log, log] },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  let next: ChildProcess | undefined;
  let app: HostedApp | undefined;

  async function stopChild(server: ChildProcess | undefined): Promise<void> {
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    server.kill("SIGTERM"); // the dev server stops DynamoDB Local on SIGTERM
    if (!(await exited(server, STOP_TIMEOUT_MS))) {
      server.kill("SIGKILL");
      await exited(server, 5000);
    }
  }

  async function stop(): Promise<void> {
    await Promise.all([stopChild(next), stopChild(child), app?.close()]);
    if (process.env.CI) printRefusals(logPath);
    await rm(work, { recursive: true, force: true });
  }

  const started = Date.now();
  try {
    // The build needs only the dev server's URL, not the server: both start at once.
    const [, nextServer] = await Promise.all([
      waitUntilServing("The dev server", ["/api/v1/token-packages", "/"], baseUrl, child, logPath),
      startNextExample(baseUrl, socketUrl, nextPort, nextLogPath).then((server) => (next = server)),
    ]);
    await waitUntilServing("next start", ["/pricing"], nextUrl, nextServer, nextLogPath);
    app = await serveHostedApp(join(WEB, "demo-dist"), appPort, {
      apiBaseUrl: baseUrl,
      socketUrl,
      identity: { provider: "local", tokenEndpoint: "/_local/identity/token" },
    });
  } catch (error) {
    await stop();
    throw error;
  }
  console.log(
    `e2e: dev server ${baseUrl} (DynamoDB Local :${ddbPort}, socket ${socketUrl}), the demo app ${appUrl} and the Next.js example ${nextUrl} up in ${Date.now() - started} ms; logs ${logPath}, ${nextLogPath}`,
  );
  project.provide("baseUrl", baseUrl);
  project.provide("appUrl", appUrl);
  project.provide("socketUrl", socketUrl);
  project.provide("deadApiUrl", `http://127.0.0.1:${deadPort}`);
  project.provide("nextUrl", nextUrl);
  project.provide("hostedAppUrl", hostedAppUrl);
  return stop;
}
