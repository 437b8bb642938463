/**
 * Idle long polls as a shared resource: what N waiting GET /inbox?wait_seconds=20 requests of one
 * tenant cost Postgres, and what 1 000 of them do to another tenant's answers.
 *   1. Postgres transactions/s (pg_stat_database xact_commit of the bench's own database, which
 *      nothing else uses) with N = 0, 200 and 1 000 idle waiters. The waiting tenant has a backlog
 *      of another type (deliverable, but not to its waiters), as a tenant filtering by type would.
 *   2. Another tenant's peek and lease p99 while the waiting tenant holds 1 000 waiters and receives
 *      EVENTS_PER_SECOND events of the waited-for type (stored and notified as the worker does), as a
 *      ratio to the same with no waiters.
 * Last line: `waiters: 200 idle <tx/s> tx/s, other tenant p99 ratio <x>` (the larger of peek and lease).
 *   BENCH_WINDOW_SECONDS (default 20; Postgres flushes an idle backend's counters every 10 s, so
 *   shorter windows are noisy), BENCH_BACKLOG (default 50000), BENCH_REQUESTS (default 400 per kind),
 *   BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/triggers_bench; the bench
 *   creates a database of its own next to it and drops it at the end).
 * The API runs in a worker thread with its own event loop, as it would in its own process.
 */
import http from "node:http";
import { randomBytes } from "node:crypto";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Client } from "pg";
import { startApiRole } from "../src/roles/api";
import { loadConfig } from "../src/config";
import { buildContainer } from "../src/container";
import { newEventId } from "../src/domain/ids";
import type { QueuedEvent } from "../src/domain/queued-event";
import { notifyDeliverable } from "../src/inbox/wakeups";
import { startSqsEmulator } from "../src/queue/sqs-emulator";
import { createApiKey } from "../src/store/api-keys";
import { insertEvents } from "../src/store/events/insert-events";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { BENCH_DATABASE_URL, fmt, httpClient, percentile, runBench } from "./support";

const WINDOW_SECONDS = Number(process.env.BENCH_WINDOW_SECONDS ?? 20);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 50_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const EVENTS_PER_SECOND = 5;
const WAITED_TYPE = "bench.wanted";

function event(tenantId: string, type: string, at: number): QueuedEvent {
  return {
    v: 1,
    id: newEventId(at),
    tenant_id: tenantId,
    type,
    source: "bench",
    payload: { note: "x".repeat(200) },
    tags: ["bench"],
    occurred_at: null,
    idempotency_key: null,
    body_hash: "0".repeat(64),
    received_at: new Date(at).toISOString(),
  };
}

async function prefill(insert: (events: QueuedEvent[]) => Promise<number>, tenantId: string, type: string, count: number): Promise<void> {
  const start = Date.now() - count;
  for (let i = 0; i < count; i += 5000) {
    const chunk: QueuedEvent[] = [];
    for (let j = i; j < Math.min(count, i + 5000); j++) chunk.push(event(tenantId, type, start + j));
    await insert(chunk);
  }
}

/** A database of the bench's own, so its transaction counter counts this bench only. */
async function ownDatabase(): Promise<{ url: string; name: string; admin: Client; drop(): Promise<void> }> {
  const name = `triggers_bench_waiters_${randomBytes(4).toString("hex")}`;
  const adminUrl = new URL(BENCH_DATABASE_URL);
  adminUrl.pathname = "/postgres";
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(BENCH_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    admin,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    },
  };
}

/** N long polls of one key, each asking again as soon as it is answered, until stop(). */
function holdWaiters(port: number, key: string, n: number): { stop(): Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: n + 10 });
  let stopping = false;
  const requests = new Set<http.ClientRequest>();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = http.get({ agent, host: "127.0.0.1", port, path: `/inbox?wait_seconds=20&limit=10&visibility_timeout=600&type=${WAITED_TYPE}`, headers: { Authorization: `Bearer ${key}` } }, (res) => {
        res.resume();
        res.on("end", () => {
          requests.delete(req);
          if (res.statusCode !== 200) console.error(`a waiter was answered ${res.statusCode}`);
          resolve();
        });
      });
      requests.add(req);
      req.on("error", () => {
        requests.delete(req);
        resolve();
      });
    });
  const loops = Array.from({ length: n }, async () => {
    while (!stopping) await one();
  });
  return {
    async stop() {
      stopping = true;
      for (const r of requests) r.destroy();
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

async function main(): Promise<void> {
  const db = await ownDatabase();
  const emulator = await startSqsEmulator({ region: "us-east-1" });
  const env = {
    DATABASE_URL: db.url,
    SQS_ENDPOINT: emulator.endpoint,
    SQS_QUEUE_NAME: `bench-waiters-${randomBytes(3).toString("hex")}`,
    // One tenant holds 1 000 long polls here: its quotas are raised for the measurement.
    LONG_POLLS_PER_KEY: "2000",
    LONG_POLLS_PER_TENANT: "2000",
  };
  const c = await buildContainer(loadConfig({ ...env, PORT: "0", LOG_LEVEL: "warn" }), { poolSize: 2 });
  let api: Worker | undefined;
  try {
    await applyMigrations(c.db.migrator, loadMigrations());
    const insert = (events: QueuedEvent[]) => insertEvents(c.db.prisma, events);
    const waitingKey = (await createApiKey(c.db.prisma, { tenantId: "waiting", name: "bench", scopes: ["inbox:read"] })).secret;
    const otherKey = (await createApiKey(c.db.prisma, { tenantId: "other", name: "bench", scopes: ["inbox:read"] })).secret;
    await prefill(insert, "waiting", "bench.backlog", BACKLOG);
    await prefill(insert, "other", "other.event", REQUESTS * 10 * 2 + 1000);
    const vacuum = new Client({ connectionString: db.url });
    await vacuum.connect();
    await vacuum.query("VACUUM ANALYZE deliveries");
    await vacuum.query("VACUUM ANALYZE events");
    await vacuum.end();

    api = new Worker(__filename, { workerData: { env } });
    const port = await new Promise<number>((resolve, reject) => {
      api!.once("message", (m: { port: number }) => resolve(m.port));
      api!.once("error", reject);
    });
    console.log(`backlog ${fmt(BACKLOG)} events of another type for the waiting tenant; windows of ${WINDOW_SECONDS} s`);

    const stats = () =>
      new Promise<Record<string, number>>((resolve) => {
        const on = (m: { stats?: Record<string, number> }) => {
          if (!m.stats) return;
          api!.off("message", on);
          resolve(m.stats);
        };
        api!.on("message", on);
        api!.postMessage("stats");
      });
    const commits = async () => Number((await db.admin.query<{ n: string }>("SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1", [db.name])).rows[0]!.n);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const txPerSecond = async (n: number): Promise<number> => {
      const waiters = holdWaiters(port, waitingKey, n);
      // Every waiter has made its first attempt, and Postgres has flushed the counters of those
      // transactions (an idle backend's reach pg_stat_database within 10 s).
      await sleep(12_000);
      const a = await commits();
      const s0 = await stats();
      const t0 = performance.now();
      await sleep(WINDOW_SECONDS * 1000);
      // Counters of idle backends reach pg_stat_database up to 10 s late; both ends lag alike.
      const b = await commits();
      const s1 = await stats();
      console.log(`  wake-ups in the window: ${Object.keys(s1).map((k) => `${k} ${s1[k]! - s0[k]!}`).join(", ")}`);
      const rate = (b - a) / ((performance.now() - t0) / 1000);
      await waiters.stop();
      return rate;
    };
    const rates = new Map<number, number>();
    for (const n of [0, 200, 1000]) {
      rates.set(n, await txPerSecond(n));
      console.log(`${String(n).padStart(5)} idle waiters: ${fmt(rates.get(n)!, 1)} Postgres transactions/s`);
    }

    // The other tenant's answers, with and without 1 000 waiters of the waiting tenant, which
    // receives EVENTS_PER_SECOND events of the waited-for type all along.
    let t = Date.now();
    const feed = setInterval(() => {
      const events = Array.from({ length: EVENTS_PER_SECOND }, () => event("waiting", WAITED_TYPE, t++));
      void insert(events)
        .then(() => notifyDeliverable(c.db.prisma, new Map([["waiting", new Set([WAITED_TYPE])]]), undefined, new Map([["waiting", events.length]])))
        .catch((err: unknown) => console.error(err));
    }, 1000);
    const client = httpClient(`http://127.0.0.1:${port}`, 4);
    const auth = { Authorization: `Bearer ${otherKey}` };
    const latencies = async (path: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const t0 = performance.now();
        const r = await client.request("GET", path, auth);
        if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.body}`);
        out.push(performance.now() - t0);
      }
      return out;
    };
    const measure = async () => ({
      peek: percentile(await latencies("/inbox?mode=peek&limit=50"), 99),
      lease: percentile(await latencies("/inbox?limit=10&visibility_timeout=600"), 99),
    });
    await sleep(2000);
    const base = await measure();
    const waiters = holdWaiters(port, waitingKey, 1000);
    await sleep(5000);
    const loaded = await measure();
    await waiters.stop();
    clearInterval(feed);
    client.close();
    const peekRatio = loaded.peek / base.peek;
    const leaseRatio = loaded.lease / base.lease;
    console.log(`other tenant p99, no waiters: peek ${fmt(base.peek, 1)} ms, lease ${fmt(base.lease, 1)} ms`);
    console.log(`other tenant p99, 1000 waiters: peek ${fmt(loaded.peek, 1)} ms (x${fmt(peekRatio, 2)}), lease ${fmt(loaded.lease, 1)} ms (x${fmt(leaseRatio, 2)})`);
    console.log(`waiters: 200 idle ${fmt(rates.get(200)!, 1)} tx/s, other tenant p99 ratio ${fmt(Math.max(peekRatio, leaseRatio), 2)}`);
  } finally {
    if (api) {
      const exited = new Promise((resolve) => api!.once("exit", resolve));
      api.postMessage("stop");
      await exited;
    }
    await c.close();
    await emulator.stop();
    await db.drop();
  }
}

/** The worker thread: the real API on a free port, until told to stop. */
async function serveApi(env: Record<string, string>): Promise<void> {
  const config = loadConfig({ ...env, PORT: "0", LOG_LEVEL: "warn", RATE_LIMIT_PER_MINUTE: "100000000" });
  const c = await buildContainer(config, { poolSize: 10 });
  const api = await startApiRole(c, { metricsServer: false, queueDepth: false });
  parentPort!.on("message", (m: string) => {
    if (m === "stats") {
      parentPort!.postMessage({ stats: { ...api.api.deps.wakeups.stats } });
      return;
    }
    void api
      .close()
      .then(() => c.close())
      .then(() => parentPort!.close());
  });
  parentPort!.postMessage({ port: api.api.port });
}

if (isMainThread) runBench(main);
else
  serveApi((workerData as { env: Record<string, string> }).env).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
