# syntax=docker/dockerfile:1
# One image for every role: `api` (default), `worker`, `scheduler`, `migrate`, `keys …`.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json .swcrc prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
COPY workers ./workers
COPY bench ./bench
# prisma generate never runs the schema engine; any existing file satisfies its lookup.
RUN PRISMA_SCHEMA_ENGINE_BINARY=/usr/local/bin/node npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/prisma ./prisma
# Code is owned by root and read-only for the service user.
USER node
EXPOSE 3000 9464
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" || exit 1
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["api"]
