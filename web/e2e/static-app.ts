// The demo app as it is hosted (S3 behind CloudFront): demo-dist/ served on an origin of its
// own, `index.html` for the app's routes, and a config.json naming the API and its socket on
// another origin. So every call the pages make crosses origins, as in AWS, and the API's
// CORS (methods included) is what lets them through.
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export interface HostedApp {
  url: string;
  close: () => Promise<void>;
}

/** Serves `root` on 127.0.0.1:`port`; `/config.json` is `config`, not the file. */
export function serveHostedApp(root: string, port: number, config: object): Promise<HostedApp> {
  const server: Server = createServer((request, reply) => {
    const path = new URL(request.url ?? "/", "http://app.invalid").pathname;
    if (path === "/config.json") {
      reply.writeHead(200, { "Content-Type": TYPES[".json"], "Cache-Control": "no-store" });
      reply.end(JSON.stringify(config));
      return;
    }
    // CloudFront's error responses: a path with no file extension is one of the app's
    // routes and gets index.html; anything else must exist.
    const file = extname(path) ? normalize(path).replace(/^(\.\.[/\\])+/, "") : "/index.html";
    readFile(join(root, file))
      .then((body) => {
        reply.writeHead(200, {
          "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
        });
        reply.end(body);
      })
      .catch(() => {
        reply.writeHead(404, { "Content-Type": TYPES[".txt"] });
        reply.end("Not Found");
      });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise((done) => server.close(() => done())),
      }),
    );
  });
}
