/**
 * Inbox throughput: consumers looping "lease 100 -> batch ack" through the real HTTP API
 * (GET /inbox, POST /events/ack), next to the same loop in raw SQL over node-postgres and to
 * pg-boss (the Postgres job queue a Node user would pick instead: fetch 100 -> complete, in
 * process, in its own schema), measured in the same run on the same database. Prints events/s of
 * each, the ratio to raw SQL (aim >= 0.5) and to pg-boss. The sides alternate in BENCH_ROUNDS
 * rounds (each draining its own tenant or queue of EVENTS/ROUNDS events), so background load on
 * the machine falls on all alike. pg-boss runs without its supervisor and scheduler, so its
 * maintenance does not run into the other sides' rounds.
 *   BENCH_EVENTS (default 50000 per side), BENCH_CONSUMERS (default 4), BENCH_BATCH (default 100),
 *   BENCH_ROUNDS (default 5),
 *   BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/triggers_bench)
 * Each run uses a fresh schema, dropped at the end.
 *
 * The API runs in a worker thread with its own event loop, as it would in its own process: the
 * bench's consumers must not compete with the server for one thread (they did, and that alone
 * added ~12 ms to every request), just as the raw SQL consumers do not share a thread with Postgres.
 */
import { randomBytes } from "node:crypto";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Pool } from "pg";
import PgBoss from "pg-boss";
import { startApiRole } from "../src/roles/api";
import { loadConfig } from "../src/config";
import { buildContainer } from "../src/container";
import { newEventId } from "../src/domain/ids";
import type { QueuedEvent } from "../src/domain/queued-event";
import { startSqsEmulator } from "../src/queue/sqs-emulator";
import { createApiKey } from "../src/store/api-keys";
import { parseDatabaseUrl } from "../src/store/database";
import { resolveSubscription } from "../src/store/subscriptions";
import { insertEvents } from "../src/store/events/insert-events";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchSchema, fmt, httpClient, postgresCpuMs, threadCpuMs, walPosition } from "./support";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const CONSUMERS = Number(process.env.BENCH_CONSUMERS ?? 4);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PER_ROUND = Math.ceil(EVENTS / ROUNDS);
const VISIBILITY_SECONDS = 300; // longer than the run: nothing is redelivered mid-measurement

/** `count` rows for one tenant, ~300-byte payloads, inserted 5 000 per statement. */
async function prefill(insert: (events: QueuedEvent[]) => Promise<number>, tenantId: string, count: number): Promise<void> {
  const start = Date.now() - count; // one millisecond apart, all in the past, so all are deliverable
  for (let i = 0; i < count; i += 5000) {
    const chunk: QueuedEvent[] = [];
    for (let j = i; j < Math.min(count, i + 5000); j++) {
      chunk.push({
        v: 1,
        id: newEventId(start + j),
        tenant_id: tenantId,
        type: "order.created",
        source: "bench",
        payload: { order: j, items: [{ sku: "A-1", qty: 2 }], note: "x".repeat(200) },
        tags: ["bench"],
        occurred_at: null,
        idempotency_key: null,
        body_hash: "0".repeat(64),
        received_at: new Date(start + j).toISOString(),
      });
    }
    await insert(chunk);
  }
}

/** Runs CONSUMERS loops of `step` until each sees an empty lease; returns events and seconds, and the Postgres server's CPU meanwhile. */
async function measure(step: () => Promise<number>, url: string): Promise<{ total: number; seconds: number; pgCpuMs: number; walBytes: number }> {
  let total = 0;
  const w0 = await walPosition(url);
  const p0 = postgresCpuMs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONSUMERS }, async () => {
      for (;;) {
        const n = await step();
        if (n === 0) return;
        total += n;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const pgCpuMs = postgresCpuMs() - p0;
  return { total, seconds, pgCpuMs, walBytes: Number((await walPosition(url)) - w0) };
}

async function main(): Promise<void> {
  const schema = await benchSchema();
  const emulator = await startSqsEmulator({ region: "us-east-1" });
  const config = loadConfig({
    DATABASE_URL: schema.url,
    SQS_ENDPOINT: emulator.endpoint,
    SQS_QUEUE_NAME: `bench-inbox-${randomBytes(3).toString("hex")}`,
    PORT: "0",
    LOG_LEVEL: "warn",
  });
  // This container only prefills and creates keys; the API builds its own in the worker thread.
  const c = await buildContainer(config, { poolSize: 2 });
  const { connectionString, schema: schemaName } = parseDatabaseUrl(schema.url);
  const raw = new Pool({ connectionString, max: CONSUMERS + 1, options: `-c search_path="${schemaName}"` });
  let api: Worker | undefined;
  const bossSchema = `pgboss_bench_${randomBytes(4).toString("hex")}`;
  const boss = new PgBoss({ connectionString, schema: bossSchema, max: CONSUMERS + 1, supervise: false, schedule: false });
  boss.on("error", (err: unknown) => console.error("pg-boss:", err));
  try {
    await applyMigrations(c.db.migrator, loadMigrations());
    api = new Worker(__filename, { workerData: { env: { DATABASE_URL: schema.url, SQS_ENDPOINT: emulator.endpoint, SQS_QUEUE_NAME: config.sqs.queueName } } });
    const port = await new Promise<number>((resolve, reject) => {
      api!.once("message", (m: { port: number }) => resolve(m.port));
      api!.once("error", reject);
    });
    const base = `http://127.0.0.1:${port}`;
    const insert = (events: QueuedEvent[]) => insertEvents(c.db.prisma, events);
    const keys: string[] = [];
    const t0 = performance.now();
    for (let r = 0; r < ROUNDS; r++) {
      keys.push((await createApiKey(c.db.prisma, { tenantId: `bench-http-${r}`, name: "bench", scopes: ["inbox:read", "events:ack"] })).secret);
      await prefill(insert, `bench-http-${r}`, PER_ROUND);
      await prefill(insert, `bench-sql-${r}`, PER_ROUND);
    }
    await boss.start();
    for (let r = 0; r < ROUNDS; r++) {
      const queue = `bench-boss-${r}`;
      await boss.createQueue(queue);
      for (let i = 0; i < PER_ROUND; i += 5000) {
        const jobs: PgBoss.JobInsert[] = [];
        for (let j = i; j < Math.min(PER_ROUND, i + 5000); j++) jobs.push({ name: queue, data: { order: j, items: [{ sku: "A-1", qty: 2 }], note: "x".repeat(200) } });
        await boss.insert(jobs);
      }
    }
    await raw.query(`VACUUM ANALYZE "${bossSchema}".job`);
    await raw.query("VACUUM ANALYZE events");
    await raw.query("VACUUM ANALYZE deliveries");
    const subscriptionIds = new Map<string, number>();
    const subscriptionOf = async (tenantId: string) => {
      let id = subscriptionIds.get(tenantId);
      if (id === undefined) subscriptionIds.set(tenantId, (id = (await resolveSubscription(c.db.prisma, tenantId, "default"))!));
      return id;
    };
    console.log(
      `prefilled ${fmt(PER_ROUND * ROUNDS)} events per side in ${fmt((performance.now() - t0) / 1000, 1)} s; ` +
        `${CONSUMERS} consumers, batch ${BATCH}, ${ROUNDS} alternating rounds`,
    );

    const client = httpClient(base, CONSUMERS);
    const httpRound = (auth: Record<string, string>) => measure(async () => {
      const res = await client.request("GET", `/inbox?limit=${BATCH}&visibility_timeout=${VISIBILITY_SECONDS}`, auth);
      if (res.status !== 200) throw new Error(`GET /inbox answered ${res.status}: ${res.body}`);
      const body = JSON.parse(res.body) as { data: Array<{ id: string }> };
      if (body.data.length === 0) return 0;
      const payload = JSON.stringify({ ids: body.data.map((e) => e.id) });
      const ack = await client.request("POST", "/events/ack", { ...auth, "Content-Type": "application/json" }, payload);
      if (ack.status !== 200) throw new Error(`POST /events/ack answered ${ack.status}: ${ack.body}`);
      return (JSON.parse(ack.body) as { acknowledged: string[] }).acknowledged.length;
    }, schema.url);

    // The baseline: the textbook lease (one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
    // RETURNING the event) and batch ack, with no HTTP, JSON, validation, auth or ORM in between.
    const sqlRound = (tenantId: string) => measure(async () => {
      const leased = await raw.query<{ id: string }>(
        `WITH leased AS (
           UPDATE deliveries SET status = 'delivered', delivery_count = delivery_count + 1, lease_id = gen_random_uuid(),
             leased_at = now(), lease_expires_at = now() + make_interval(secs => $3), available_at = now() + make_interval(secs => $3)
           WHERE subscription_id = $4 AND event_id IN (
             SELECT event_id FROM deliveries
             WHERE tenant_id = $1 AND subscription_id = $4 AND status IN ('pending', 'delivered') AND available_at <= now()
             ORDER BY received_at, event_id LIMIT $2 FOR UPDATE SKIP LOCKED
           )
           RETURNING event_id, delivery_count, lease_id, lease_expires_at
         )
         SELECT e.id, e.type, e.source, e.payload, e.tags, e.received_at, l.delivery_count, l.lease_id, l.lease_expires_at
         FROM leased l JOIN events e ON e.id = l.event_id`,
        [tenantId, BATCH, VISIBILITY_SECONDS, await subscriptionOf(tenantId)],
      );
      if (leased.rows.length === 0) return 0;
      const acked = await raw.query(
        `UPDATE deliveries SET status = 'acknowledged', acknowledged_at = COALESCE(acknowledged_at, now()), lease_id = NULL, lease_expires_at = NULL
         WHERE tenant_id = $1 AND subscription_id = $3 AND event_id = ANY($2::text[])`,
        [tenantId, leased.rows.map((r) => r.id), await subscriptionOf(tenantId)],
      );
      return acked.rowCount ?? 0;
    }, schema.url);

    // pg-boss: fetch a batch (its SKIP LOCKED claim, state active) and complete it by ids.
    const bossRound = (queue: string) => measure(async () => {
      const jobs = await boss.fetch(queue, { batchSize: BATCH });
      if (jobs.length === 0) return 0;
      await boss.complete(queue, jobs.map((j) => j.id));
      return jobs.length;
    }, schema.url);

    const http = { total: 0, seconds: 0, pgCpuMs: 0, walBytes: 0 };
    const sql = { ...http };
    const pgBoss = { ...http };
    const add = (into: typeof http, r: typeof http) => {
      into.total += r.total;
      into.seconds += r.seconds;
      into.pgCpuMs += r.pgCpuMs;
      into.walBytes += r.walBytes;
    };
    /** The API thread's CPU-milliseconds so far (its JavaScript thread: not GC helpers or libuv's pool). */
    const apiCpuMs = () =>
      new Promise<number>((resolve) => {
        api!.once("message", (m: { cpuMs: number }) => resolve(m.cpuMs));
        api!.postMessage("cpu");
      });
    let apiCpu = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const a0 = await apiCpuMs();
      add(http, await httpRound({ Authorization: `Bearer ${keys[r]!}` }));
      apiCpu += (await apiCpuMs()) - a0;
      add(sql, await sqlRound(`bench-sql-${r}`));
      add(pgBoss, await bossRound(`bench-boss-${r}`));
    }
    client.close();

    for (const [name, r] of [["http api", http], ["raw sql ", sql], ["pg-boss ", pgBoss]] as const) {
      console.log(
        `${name}  ${fmt(r.total / r.seconds).padStart(8)} events/s  (${fmt(r.total)} events in ${fmt(r.seconds, 2)} s; per event: Postgres CPU ${fmt((1000 * r.pgCpuMs) / r.total)} µs, WAL ${fmt(r.walBytes / r.total)} bytes)`,
      );
    }
    console.log(`API thread CPU per leased+acked event: ${fmt((1000 * apiCpu) / http.total, 1)} µs (its JavaScript thread, /proc/thread-self)`);
    const rate = (r: typeof http) => r.total / r.seconds;
    console.log(`ratio http/raw = ${fmt(rate(http) / rate(sql), 2)} (aim >= 0.5); http/pg-boss = ${fmt(rate(http) / rate(pgBoss), 2)}`);
    const expected = PER_ROUND * ROUNDS;
    if (http.total !== expected || sql.total !== expected || pgBoss.total !== expected) throw new Error(`drained ${http.total} / ${sql.total} / ${pgBoss.total} of ${expected} events`);
  } finally {
    if (api) {
      const exited = new Promise((resolve) => api!.once("exit", resolve));
      api.postMessage("stop");
      await exited;
    }
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
    await raw.query(`DROP SCHEMA IF EXISTS "${bossSchema}" CASCADE`).catch(() => undefined);
    await raw.end();
    await c.close();
    await emulator.stop();
    await schema.drop();
  }
}

/** The worker thread: the real API (container, Koa, Prisma) on a free port, until told to stop. */
async function serveApi(env: Record<string, string>): Promise<void> {
  const config = loadConfig({ ...env, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_MINUTE: "100000000" });
  // Same pool size as the raw SQL side, so neither gets more database connections than the other.
  const c = await buildContainer(config, { poolSize: CONSUMERS + 1 });
  const api = await startApiRole(c, { metricsServer: false, queueDepth: false });
  parentPort!.on("message", (m: unknown) => {
    if (m === "cpu") return parentPort!.postMessage({ cpuMs: threadCpuMs() });
    void api
      .close()
      .then(() => c.close())
      .then(() => parentPort!.close());
  });
  parentPort!.postMessage({ port: api.api.port });
}

const run = isMainThread ? main() : serveApi((workerData as { env: Record<string, string> }).env);
run.catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
