import { defineConfig } from "vitest/config";

// End-to-end tests: headless Chromium (Debian's, driven by playwright-core) against a dev
// server that e2e/devserver.ts starts on free ports with its own DynamoDB Local data.
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    globalSetup: ["e2e/devserver.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    // expect.poll's own default is 1 s: too short for a page on a loaded 2-core machine
    // (a locator's count() does not wait as its textContent() does).
    expect: { poll: { timeout: 10_000 } },
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
