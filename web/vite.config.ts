// Vite builds the app into build/web/dist (served by the gateway at /); Vitest runs
// src/**/*.test.ts. The API client is generated from protos/ into build/web/gen (`make web`),
// imported as @gen/...; build/web/node_modules links to web/node_modules so its imports of
// @bufbuild/protobuf resolve.
//
// `npx vite` (the dev server) proxies the API, /config.json and /dev/token to a gateway:
// BOOKRENTAL_GATEWAY=http://127.0.0.1:PORT (default make run's http://127.0.0.1:8080).
import { defineConfig } from "vitest/config";

const repo = decodeURIComponent(new URL("..", import.meta.url).pathname);
const gateway = process.env.BOOKRENTAL_GATEWAY ?? "http://127.0.0.1:8080";

export default defineConfig({
  resolve: { alias: { "@gen": `${repo}build/web/gen` } },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: `${repo}build/web/dist`,
    emptyOutDir: true,
    target: "es2022",
    reportCompressedSize: true,
  },
  server: {
    fs: { allow: [repo] },
    proxy: {
      "^/(bookrental\\.|config\\.json|dev/token)": { target: gateway, changeOrigin: false },
    },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
