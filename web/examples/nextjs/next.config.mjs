// This folder is the app's root: without `turbopack.root` Next.js looks above it for a
// workspace root (web/ has a lockfile of its own) and warns that it picked one.
/** @type {import("next").NextConfig} */
const nextConfig = {
  turbopack: { root: import.meta.dirname },
  outputFileTracingRoot: import.meta.dirname,
  poweredByHeader: false,
};

export default nextConfig;
