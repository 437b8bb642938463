#!/usr/bin/env node
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, requireServiceDependencies, type Config } from "../config";
import { buildContainer, type Container } from "../container";
import { apiDeps, startApi } from "../api/server";
import { apiReadinessChecks } from "../api/routes/health";
import { applyMigrations, loadMigrations } from "../store/migrate/migrations";
import { createApiKey, listApiKeys, revokeApiKey, SCOPES, type Scope } from "../store/api-keys";
import { startIngestWorker } from "../../workers/ingest";
import { startScheduler } from "../../workers/scheduler";
import { createSqsClient } from "../queue/sqs-queue";
import { openDatabase, parseDatabaseUrl } from "../store/database";
import { createQueues } from "../queue/create-queues";
import { startSqsEmulator } from "../queue/sqs-emulator";
import { ensureDevKey } from "./dev-key";
import { RDSDataClient } from "@aws-sdk/client-rds-data";
import { dataApiExecutor } from "../store/migrate/data-api-executor";
import { startMetricsServer, type RunningMetricsServer } from "../observability/metrics-server";
import { QueueDepthPoller } from "../observability/queue-depth-poller";
import type { ReadinessChecks } from "../observability/readiness";

const USAGE = `usage: triggers <command>

  start                  API + ingest worker + scheduler in one process (embedded defaults)
  api                    the HTTP API
  worker                 the ingest worker (SQS -> Postgres)
  scheduler              scheduled maintenance (event expiry) on BullMQ, or a timer without REDIS_URL
  migrate                apply database migrations (creating the schema named in DATABASE_URL ?schema=)
  healthcheck            exit 0 when this container's role answers /healthz on METRICS_PORT, else 1
  keys create --tenant T --scopes s1,s2 [--name N] [--rate-limit N] [--json]
  keys list [--tenant T] [--json]
  keys revoke <key-id>
  sqs-emulator [--port N] [--queue NAME] [--max-receive-count N]
                         an SQS emulator on 127.0.0.1 with the queue and its DLQ

Configuration comes from the environment; see README.md.`;

/** How long a role may take to stop after SIGTERM/SIGINT before it exits 1 anyway, ms. */
const SHUTDOWN_BOUND_MS = 10_000;

/**
 * Runs `stop` once on SIGTERM/SIGINT, then exits 0; a stop that fails or overruns the bound exits
 * 1. A second signal while stopping is ignored: the bound already guarantees the exit.
 */
function onShutdown(c: Container | undefined, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    c?.logger.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      c?.logger.error({ boundMs: SHUTDOWN_BOUND_MS }, "shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_BOUND_MS);
    force.unref();
    stop()
      .then(() => {
        c?.logger.info({ ms: Date.now() - started }, "shutdown complete");
        process.exit(0);
      })
      .catch((err: unknown) => {
        c?.logger.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}

/** Serves /metrics, /healthz and /readyz (the role's own dependencies) of a non-API role on METRICS_PORT. */
async function startRoleMetricsServer(c: Container, checks: ReadinessChecks): Promise<RunningMetricsServer> {
  const server = await startMetricsServer({ registry: c.metrics.registry, checks, host: c.config.host, port: c.config.metricsPort, logger: c.logger });
  c.logger.info({ port: server.port, host: c.config.host }, "metrics server listening");
  return server;
}

/** Keeps the queue depth gauges of the main queue and the DLQ current (API and worker roles). */
function startQueueDepthPoller(c: Container): QueueDepthPoller {
  return new QueueDepthPoller({ queues: { main: c.queue, dlq: c.dlq }, metrics: c.metrics, logger: c.logger }).start();
}

async function migrate(c: Container): Promise<void> {
  const result = await applyMigrations(c.db.migrator, loadMigrations(), (line) => c.logger.info(line));
  c.logger.info({ applied: result.applied.length, alreadyApplied: result.alreadyApplied.length }, "database is up to date");
}

async function cmdStart(config: Config): Promise<void> {
  const c = await buildContainer(config);
  await migrate(c);
  const worker = startIngestWorker(c);
  const scheduler = await startScheduler(c);
  const api = await startApi(c);
  const poller = startQueueDepthPoller(c);
  const dev = await ensureDevKey(c.db.prisma, config.dataDir);
  const base = `http://${config.host}:${api.port}`;
  const hint = [
    "",
    `Triggers is running on ${base} (${c.db.kind === "pglite" ? "embedded PGlite" : "Postgres"}, ${c.emulator ? "in-process SQS emulator" : "SQS"}, ${c.redis ? "Redis" : "no Redis"})`,
    `Development API key for tenant "dev" (saved in ${dev.file}):`,
    "",
    `  ${dev.secret}`,
    "",
    "Try:",
    `  curl -s -X POST ${base}/events -H "Authorization: Bearer ${dev.secret}" -H 'Content-Type: application/json' -d '{"type":"order.created","payload":{"id":42}}'`,
    `  curl -s ${base}/inbox -H "Authorization: Bearer ${dev.secret}"`,
    "",
  ].join("\n");
  process.stdout.write(`${hint}\n`);
  onShutdown(c, async () => {
    // Stop taking requests first (in-flight ones finish and their sends complete), then drain the
    // worker's batches in hand, then the scheduler's run in progress; the clients go last.
    await api.close();
    await worker.stop();
    await scheduler.close();
    await poller.stop();
    await c.close();
  });
}

async function cmdApi(config: Config): Promise<void> {
  requireServiceDependencies(config, "api");
  const c = await buildContainer(config);
  const deps = apiDeps(c);
  const api = await startApi(c, deps);
  const poller = startQueueDepthPoller(c);
  c.logger.info({ port: api.port, host: config.host }, "api listening");
  // Every role answers /healthz, /readyz and /metrics on METRICS_PORT (the container health check
  // probes it); the API keeps them on PORT as well, for the load balancer. The same port twice
  // means the API's own listener already serves them.
  const metrics = config.metricsPort === api.port ? undefined : await startRoleMetricsServer(c, apiReadinessChecks(deps));
  onShutdown(c, async () => {
    await api.close();
    await metrics?.close();
    await poller.stop();
    await c.close();
  });
}

async function cmdWorker(config: Config): Promise<void> {
  requireServiceDependencies(config, "worker");
  const c = await buildContainer(config);
  const worker = startIngestWorker(c);
  const poller = startQueueDepthPoller(c);
  const metrics = await startRoleMetricsServer(c, { postgres: () => c.db.ping(), sqs: () => c.queue.depth() });
  onShutdown(c, async () => {
    // Receiving stops at once; batches in hand are committed and then deleted from SQS.
    await worker.stop();
    await poller.stop();
    await metrics.close();
    await c.close();
  });
}

async function cmdScheduler(config: Config): Promise<void> {
  requireServiceDependencies(config, "scheduler");
  const c = await buildContainer(config);
  const scheduler = await startScheduler(c);
  const redis = c.redis;
  const metrics = await startRoleMetricsServer(c, { postgres: () => c.db.ping(), ...(redis ? { redis: () => redis.ping() } : {}) });
  onShutdown(c, async () => {
    await scheduler.close();
    await metrics.close();
    await c.close();
  });
}

async function cmdMigrate(config: Config): Promise<void> {
  if (config.dataApi) {
    // Through the Aurora Data API: no database connection, no queue, nothing else is built.
    const client = new RDSDataClient({ region: config.sqs.region });
    try {
      const result = await applyMigrations(dataApiExecutor(client, config.dataApi), loadMigrations(), (line) => process.stdout.write(`${line}\n`));
      process.stdout.write(`database is up to date (${result.applied.length} applied, ${result.alreadyApplied.length} already applied)\n`);
    } finally {
      client.destroy();
    }
    return;
  }
  const db = await openDatabase(config, { poolSize: 1 });
  try {
    // Prisma's `?schema=` names the schema every table lives in; the first migrate creates it.
    const schema = config.databaseUrl ? parseDatabaseUrl(config.databaseUrl).schema : undefined;
    if (schema) await db.migrator.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    const result = await applyMigrations(db.migrator, loadMigrations(), (line) => process.stdout.write(`${line}\n`));
    process.stdout.write(`database is up to date (${result.applied.length} applied, ${result.alreadyApplied.length} already applied)\n`);
  } finally {
    await db.close();
  }
}

function parseScopes(raw: string | undefined): Scope[] {
  const scopes = (raw ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0) {
    throw new UsageError(`--scopes must list one or more of ${SCOPES.join(", ")}${bad.length ? ` (unknown: ${bad.join(", ")})` : ""}`);
  }
  return scopes as Scope[];
}

class UsageError extends Error {}

async function cmdKeys(config: Config, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tenant: { type: "string" },
      scopes: { type: "string" },
      name: { type: "string" },
      "rate-limit": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const [action, ...rest] = positionals;
  if (action === "create") {
    if (!values.tenant || !/^[A-Za-z0-9_.-]{1,128}$/.test(values.tenant)) throw new UsageError("--tenant is required (letters, digits, _ . -)");
    const scopes = parseScopes(values.scopes);
    const rateLimit = values["rate-limit"] === undefined ? null : Number(values["rate-limit"]);
    if (rateLimit !== null && (!Number.isInteger(rateLimit) || rateLimit < 1)) throw new UsageError("--rate-limit must be a positive integer (requests per minute)");
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      const key = await createApiKey(db.prisma, { tenantId: values.tenant, name: values.name ?? "api key", scopes, rateLimit });
      if (values.json) process.stdout.write(`${JSON.stringify({ id: key.id, tenant: key.tenantId, name: key.name, scopes: key.scopes, key: key.secret })}\n`);
      else process.stdout.write(`created ${key.id} for tenant ${key.tenantId} (${key.scopes.join(", ")})\n\n  ${key.secret}\n\nThis key is shown only once.\n`);
    } finally {
      await db.close();
    }
    return;
  }
  if (action === "list") {
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      const keys = await listApiKeys(db.prisma, values.tenant);
      if (values.json) process.stdout.write(`${JSON.stringify(keys)}\n`);
      else for (const k of keys) process.stdout.write(`${k.id}  ${k.tenantId}  ${k.prefix}…  ${k.scopes.join(",")}  ${k.revokedAt ? "revoked" : "active"}  ${k.name}\n`);
    } finally {
      await db.close();
    }
    return;
  }
  if (action === "revoke") {
    const id = rest[0];
    if (!id) throw new UsageError("keys revoke needs a key id");
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      if (!(await revokeApiKey(db.prisma, id))) throw new UsageError(`no such key: ${id}`);
      process.stdout.write(`revoked ${id}\n`);
    } finally {
      await db.close();
    }
    return;
  }
  throw new UsageError("keys needs one of: create, list, revoke");
}

async function cmdSqsEmulator(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: "string", default: "9324" }, queue: { type: "string" }, "max-receive-count": { type: "string" } },
  });
  const emulator = await startSqsEmulator({ port: Number(values.port), region: config.sqs.region });
  const client = createSqsClient({ region: config.sqs.region, endpoint: emulator.endpoint });
  const queues = await createQueues(client, {
    name: values.queue ?? config.sqs.queueName,
    maxReceiveCount: values["max-receive-count"] ? Number(values["max-receive-count"]) : config.sqs.maxReceiveCount,
    visibilitySeconds: config.worker.visibilitySeconds,
  });
  process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint, ...queues })}\n`);
  onShutdown(undefined, async () => {
    client.destroy();
    await emulator.stop();
  });
}

/** Deadline of the `healthcheck` probe, ms. */
const HEALTHCHECK_TIMEOUT_MS = 2000;

/**
 * The container health check of every role: GET http://127.0.0.1:$METRICS_PORT/healthz with a 2 s
 * deadline; exit 0 on a 2xx answer, 1 on anything else (no answer, refused, timeout, bad port).
 */
async function cmdHealthcheck(): Promise<never> {
  const raw = process.env.METRICS_PORT ?? "9464";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    process.stderr.write(`healthcheck: METRICS_PORT must be a port number (1-65535)\n`);
    process.exit(1);
  }
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) });
    await res.body?.cancel();
    if (res.ok) process.exit(0);
    process.stderr.write(`healthcheck: /healthz answered ${res.status}\n`);
  } catch (err) {
    process.stderr.write(`healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === "help" || command === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === "healthcheck") return cmdHealthcheck();
  const config = loadConfig();
  switch (command) {
    case "start":
      return cmdStart(config);
    case "api":
      return cmdApi(config);
    case "worker":
      return cmdWorker(config);
    case "scheduler":
      return cmdScheduler(config);
    case "migrate":
      return cmdMigrate(config);
    case "keys":
      return cmdKeys(config, args);
    case "sqs-emulator":
      return cmdSqsEmulator(config, args);
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof UsageError) {
    process.stderr.write(`triggers: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`triggers: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
