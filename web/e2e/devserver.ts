// Global setup of the e2e run: a dev server of its own (free ports, a temporary DynamoDB
// Local data folder), stopped at the end. Tests read its URL with inject("baseUrl").
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    deadApiUrl: string;
  }
}

const ROOT = resolve(__dirname, "../..");
const PYTHON = join(ROOT, ".venv/bin/python");
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

async function waitUntilServing(url: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const reply = await fetch(`${url}/api/v1/token-packages`, {
        signal: AbortSignal.timeout(2000),
      });
      const page = await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) });
      if (reply.ok && page.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((wait) => setTimeout(wait, 250));
  }
  const log = existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-3000) : "";
  throw new Error(`The dev server did not start at ${url}. Its log (${logPath}):\n${log}`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`make bootstrap\` first`);
  if (!existsSync(join(ROOT, "web/dist/index.html")))
    throw new Error("web/dist is not built: run `make web`");
  const work = await mkdtemp(join(tmpdir(), "token-billing-e2e-"));
  const dataDir = join(work, "dynamodb");
  const logPath = join(work, "devserver.log");
  const [port, ddbPort, deadPort] = [await freePort(), await freePort(), await freePort()];
  const wsPort = await freePort(); // the WebSocket API; config.json gets its URL from the server
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
    ],
    { cwd: ROOT, env, stdio: ["ignore", log, log] },
  );
  const baseUrl = `http://127.0.0.1:${port}`;

  async function stop(): Promise<void> {
    child.kill("SIGTERM"); // the dev server stops DynamoDB Local on SIGTERM
    if (!(await exited(child, STOP_TIMEOUT_MS))) {
      child.kill("SIGKILL");
      await exited(child, 5000);
    }
    await rm(work, { recursive: true, force: true });
  }

  const started = Date.now();
  try {
    await waitUntilServing(baseUrl, child, logPath);
  } catch (error) {
    await stop();
    throw error;
  }
  console.log(
    `e2e: dev server ${baseUrl} (DynamoDB Local :${ddbPort}) up in ${Date.now() - started} ms; log ${logPath}`,
  );
  project.provide("baseUrl", baseUrl);
  project.provide("deadApiUrl", `http://127.0.0.1:${deadPort}`);
  return stop;
}
