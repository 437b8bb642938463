# One image for every role: `api` (default), `worker`, `scheduler`, `migrate`, `keys …`.
# Node 22 is the LTS line .ci/run tests (next to Node 20); package.json engines states the floor.
# Built for linux/amd64, the module's default cpu_architecture (X86_64), wherever it is built (an
# arm64 laptop included). For ARM64 tasks build with --build-arg PLATFORM=linux/arm64 and set
# cpu_architecture = "ARM64": every stage (node_modules included) is then built for arm64.
ARG PLATFORM=linux/amd64

FROM --platform=${PLATFORM} node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json .swcrc prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
COPY workers ./workers
# prisma generate never runs the schema engine; any existing file satisfies its lookup.
# Only src and workers are compiled, without source maps (they embed the TypeScript sources); the
# console's assets are bundled into dist/console (docs/console.md).
RUN PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node npm run -s prisma:generate \
 && npx swc src workers -d dist --copy-files --quiet --source-maps false \
 && node src/console/build.js

# Production dependencies only. --omit=optional also drops the optional peers of @prisma/client
# (the Prisma CLI and TypeScript, ~240 MB), which `--omit=dev` keeps; nothing at run time needs them.
# Then what only `start` and `sqs-emulator` (development commands) load: PGlite, its Prisma
# adapter, fauxqs and with it fastify (uninstalled with the packages only they need; package.json
# and the lock file stay as they are). Of Prisma's query compilers only PostgreSQL's, the one the
# generated client loads, stays; type declarations and source maps go.
# test/integration/image-slim.test.ts runs these RUN lines and every production role from the result.
FROM --platform=${PLATFORM} node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm uninstall --no-save --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
      @electric-sql/pglite pglite-prisma-adapter fauxqs \
 && find node_modules/@prisma/client/runtime -maxdepth 1 -type f ! -name client.js \
      ! -name query_compiler_fast_bg.postgresql.js ! -name query_compiler_fast_bg.postgresql.wasm-base64.js -delete \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && npm cache clean --force

FROM --platform=${PLATFORM} node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    METRICS_PORT=9464
WORKDIR /app
COPY --from=deps --chown=root:root /app/package.json ./
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/prisma ./prisma
# Code is owned by root and read-only for the service user.
USER node
EXPOSE 3000 9464
# Every role (api included) answers /healthz on METRICS_PORT; the same command is the ECS health check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "healthcheck"]
# A 32 MB semi-space (young generation) instead of V8's default 16 MB: the API keeps each request's
# objects alive for the few ms its SQS send takes, and with a small young generation those objects
# are still live at scavenges often enough to be promoted and then collected by full GCs. The
# benches run their servers with these same options (bench/image.ts reads them from here).
ENTRYPOINT ["node", "--max-semi-space-size=32", "dist/src/cli/main.js"]
CMD ["api"]
