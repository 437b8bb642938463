import { setTimeout as sleep } from "node:timers/promises";
/**
 * End-to-end latency: the time from POST /events to the event being leasable from GET /inbox,
 * with the API, the ingest worker and the SQS emulator as separate processes on real Postgres and
 * Redis. First at a steady 1 000 events/s, then stepping the rate up to find the highest steady
 * rate whose p99 stays under 1 s. The baseline printed with it is the same path's floor: one
 * POST plus one inbox poll on an idle system.
 *   BENCH_E2E_SECONDS (default 8 per step), BENCH_E2E_RATES (ramp, default 250,500,750,1000,1500,2000,2500,3000,4000),
 *   BENCH_E2E_WARMUP_RATE (default 1000, the measured rate; one unreported step before anything is measured),
 *   BENCH_PROFILE_DIR (write CPU profiles of the API and worker processes there)
 * Then the same path with a long-polling consumer (GET /inbox?wait_seconds=2: the request is
 * answered when the worker's commit wakes it, no polling) at 1 000 and 2 500 ev/s
 * (BENCH_E2E_LONG_POLL_RATES), and the idle cost of long polling: transactions per second on a
 * database of its own while 100 long polls wait on an API process with nothing to deliver
 * (BENCH_E2E_IDLE_WAITERS, BENCH_E2E_IDLE_SECONDS). Each long poll costs its one initial lease
 * attempt (100 waiters re-asking every 20 s: ~5/s) plus the process's safety re-check (0.2/s);
 * waiting itself costs nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { connectPostgres } from "../src/store/database";
import { createApiKey } from "../src/store/api-keys";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { Client } from "pg";
import { BENCH_DATABASE_URL, benchSchema, fmt, httpClient, percentile, runBench } from "./support";
import { createSchema, freePort, spawnEmulator, waitForHttp } from "../src/dev/local-services";

const SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 8);
const RATES = (process.env.BENCH_E2E_RATES ?? "250,500,750,1000,1500,2000,2500,3000,4000").split(",").map(Number);

const MAX_IN_FLIGHT = Number(process.env.BENCH_E2E_IN_FLIGHT ?? 128);

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  const children: ChildProcess[] = [];
  try {
    await applyMigrations(db.migrator, loadMigrations());
    const key = (await createApiKey(db.prisma, { tenantId: "bench", name: "bench", scopes: ["events:write", "inbox:read", "events:ack"] })).secret;
    const port = await freePort();
    const metricsPort = await freePort();
    const env = {
      ...process.env,
      DATABASE_URL: schema.url,
      SQS_ENDPOINT: emulator.endpoint,
      SQS_QUEUE_NAME: `bench-e2e-${Date.now()}`,
      REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
      REDIS_PREFIX: `bench-e2e-${Date.now()}`,
      RATE_LIMIT_PER_MINUTE: "100000000",
      DELIVERY_ROWS_PER_MINUTE_PER_TENANT: "1000000000000",
      LOG_LEVEL: "warn",
      WORKER_WAIT_SECONDS: "1",
      // The emulator wakes every waiting long poll for each new message; fewer receivers waste less CPU here.
      WORKER_RECEIVERS: process.env.BENCH_E2E_RECEIVERS ?? "2",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    const cli = join(__dirname, "..", "src", "cli", "main.js");
    const profile = process.env.BENCH_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
    children.push(spawn(process.execPath, [...profile, cli, "api"], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, PORT: String(port) } }));
    await waitForHttp(`http://127.0.0.1:${port}/readyz`);
    children.push(spawn(process.execPath, [...profile, cli, "worker"], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, METRICS_PORT: String(metricsPort) } }));
    await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`);
    const client = httpClient(`http://127.0.0.1:${port}`, MAX_IN_FLIGHT + 4);
    const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };

    // Keyed by a sequence number in the payload: the consumer can lease an event before its 202 has been read.
    const sentAt = new Map<number, number>();
    let seq = 0;
    const latencies: number[] = [];
    let consuming = true;
    // Polling (as fast as it can, 2 ms apart when empty) or long polling (waits to be woken).
    let longPoll = false;
    // One consumer leasing, acknowledging what it got in one call.
    const consumer = (async () => {
      while (consuming) {
        const lp = longPoll;
        const res = await client.request("GET", `/inbox?limit=500&visibility_timeout=300${lp ? "&wait_seconds=2" : ""}`, headers);
        const body = JSON.parse(res.body) as { data: Array<{ id: string; payload: { seq?: number } }> };
        const now = performance.now();
        for (const e of body.data) {
          const s = e.payload?.seq;
          const t = s === undefined ? undefined : sentAt.get(s);
          if (s !== undefined && t !== undefined) {
            latencies.push(now - t);
            sentAt.delete(s);
          }
        }
        if (body.data.length > 0) {
          await client.request("POST", "/events/ack", headers, JSON.stringify({ ids: body.data.map((e) => e.id) }));
        } else if (!lp) {
          await sleep(2);
        }
      }
    })();

    // Open-loop producer: requests start on schedule whether or not earlier ones finished.
    const step = async (rate: number) => {
      latencies.length = 0;
      sentAt.clear();
      let failed = 0;
      let accepted = 0;
      const inflight = new Set<Promise<void>>();
      const start = performance.now();
      const total = rate * SECONDS;
      for (let i = 0; i < total; i++) {
        const due = start + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        // Bounded concurrency like a real producer fleet: past it, the offered rate is simply not met.
        while (inflight.size >= MAX_IN_FLIGHT) await Promise.race(inflight);
        const s = seq++;
        sentAt.set(s, performance.now());
        const p = client
          .request("POST", "/events", headers, JSON.stringify({ type: "bench.e2e", payload: { seq: s } }))
          .then((res) => {
            if (res.status === 202) accepted++;
            else {
              failed++;
              sentAt.delete(s);
            }
          })
          .catch(() => {
            failed++;
            sentAt.delete(s);
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
      const offeredSeconds = (performance.now() - start) / 1000;
      // Let the tail arrive (bounded).
      const deadline = performance.now() + 10_000;
      while (latencies.length < accepted && performance.now() < deadline) await sleep(20);
      const missing = accepted - latencies.length;
      return {
        rate,
        achieved: accepted / offeredSeconds,
        p50: percentile(latencies, 50),
        p99: missing > accepted * 0.01 ? Infinity : percentile(latencies, 99),
        failed,
        missing,
      };
    };

    // Warm up first (JIT, connection pools on every hop, the worker's receivers), as a service in
    // production is: the first seconds after a cold start are not a steady state. Not reported.
    await step(Number(process.env.BENCH_E2E_WARMUP_RATE ?? 1000));
    await sleep(1000);

    // Floor: one event at a time on an idle system.
    const floor: number[] = [];
    for (let i = 0; i < 30; i++) {
      latencies.length = 0;
      const s = seq++;
      sentAt.set(s, performance.now());
      await client.request("POST", "/events", headers, JSON.stringify({ type: "bench.e2e", payload: { seq: s } }));
      while (latencies.length === 0) await sleep(1);
      floor.push(latencies[0]!);
    }

    const show = (r: Awaited<ReturnType<typeof step>>) =>
      process.stdout.write(
        `  ${fmt(r.rate).padStart(6)} ev/s offered: achieved ${fmt(r.achieved)} ev/s, POST->leasable p50 ${fmt(r.p50, 1)} ms p99 ${Number.isFinite(r.p99) ? fmt(r.p99, 1) : "∞"} ms (failed ${r.failed}, not seen ${r.missing})\n`,
      );
    const at1000 = await step(1000);
    show(at1000);
    await sleep(2000);
    const results = [];
    for (const rate of RATES) {
      const r = await step(rate);
      results.push(r);
      show(r);
      if (!(r.p99 < 1000) || r.achieved < rate * 0.95) break;
      await sleep(1000);
    }
    // The same path with the consumer long-polling instead.
    longPoll = true;
    await sleep(3000);
    const longPollResults = [];
    for (const rate of (process.env.BENCH_E2E_LONG_POLL_RATES ?? "1000,2500").split(",").map(Number)) {
      const r = await step(rate);
      longPollResults.push(r);
      process.stdout.write("  long poll:");
      show(r);
      await sleep(1000);
    }
    consuming = false;
    await consumer;
    const steady = results.filter((r) => r.p99 < 1000 && r.achieved >= r.rate * 0.95).map((r) => r.rate);
    process.stdout.write(
      [
        `bench:e2e  ${SECONDS}s per step`,
        `  floor (idle, one event at a time): p50 ${fmt(percentile(floor, 50), 1)} ms p99 ${fmt(percentile(floor, 99), 1)} ms`,
        `  at 1 000 ev/s: achieved ${fmt(at1000.achieved)} ev/s, p50 ${fmt(at1000.p50, 1)} ms, p99 ${Number.isFinite(at1000.p99) ? fmt(at1000.p99, 1) : "∞"} ms (aim p99 < 200 ms); p99 / floor p99 = ${fmt(at1000.p99 / percentile(floor, 99), 2)}`,
        `  highest steady rate with p99 < 1 s: ${steady.length ? `${fmt(Math.max(...steady))} ev/s` : "none of the rates tried"}`,
        ...longPollResults.map(
          (r) =>
            `  long-polling consumer at ${fmt(r.rate)} ev/s: achieved ${fmt(r.achieved)} ev/s, POST->in the consumer's hands p50 ${fmt(r.p50, 1)} ms, p99 ${Number.isFinite(r.p99) ? fmt(r.p99, 1) : "∞"} ms${r.rate === 1000 ? " (aim p99 < 100 ms)" : ""}`,
        ),
        "",
      ].join("\n"),
    );
    client.close();
    for (const c of children) c.kill("SIGTERM");
    children.length = 0;
    await sleep(500);
    const idle = await idleCost(emulator.endpoint);
    process.stdout.write(
      `  idle cost: ${idle.waiters} long polls waiting ${idle.seconds} s: ${fmt(idle.perSecond, 2)} transactions/s on the API's database (aim ≈ 0; a polling consumer at 2 ms costs ~500/s)\n`,
    );
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await sleep(500);
    await db.close();
    await schema.drop();
    emulator.stop();
  }
}

/**
 * Idle cost of long polling: an API process on a database of its own (so the xact counters of
 * pg_stat_database count only it), 100 requests waiting with nothing to deliver, and the
 * transactions that database saw over the interval, per second.
 */
async function idleCost(sqsEndpoint: string): Promise<{ waiters: number; seconds: number; perSecond: number }> {
  const waiters = Number(process.env.BENCH_E2E_IDLE_WAITERS ?? 100);
  const seconds = Number(process.env.BENCH_E2E_IDLE_SECONDS ?? 15);
  const dbName = `triggers_bench_idle_${process.pid}`;
  const adminUrl = new URL(BENCH_DATABASE_URL);
  adminUrl.pathname = "/postgres";
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = new URL(BENCH_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  let child: ChildProcess | undefined;
  try {
    const schema = await createSchema(dbUrl.toString(), "idle");
    const tenantDb = connectPostgres(schema.url, { poolSize: 1 });
    await applyMigrations(tenantDb.migrator, loadMigrations());
    const key = (await createApiKey(tenantDb.prisma, { tenantId: "idle", name: "idle", scopes: ["inbox:read"] })).secret;
    await tenantDb.close();
    const port = await freePort();
    child = spawn(process.execPath, [join(__dirname, "..", "src", "cli", "main.js"), "api"], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DATABASE_URL: schema.url, SQS_ENDPOINT: sqsEndpoint, SQS_QUEUE_NAME: `bench-idle-${Date.now()}`, PORT: String(port), LOG_LEVEL: "warn", RATE_LIMIT_PER_MINUTE: "100000000", API_KEY_CACHE_MS: "5000", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`);
    const client = httpClient(`http://127.0.0.1:${port}`, waiters + 4);
    const headers = { authorization: `Bearer ${key}` };
    let running = true;
    const loops = Array.from({ length: waiters }, async () => {
      while (running) await client.request("GET", "/inbox?wait_seconds=20", headers).catch(() => sleep(100));
    });
    await sleep(3000); // every waiter is in, key lookups are cached
    const xacts = async () => {
      const r = await admin.query<{ n: string }>("SELECT (xact_commit + xact_rollback)::text AS n FROM pg_stat_database WHERE datname = $1", [dbName]);
      return Number(r.rows[0]!.n);
    };
    await admin.query("SELECT pg_stat_clear_snapshot()");
    const before = await xacts();
    await sleep(seconds * 1000);
    await admin.query("SELECT pg_stat_clear_snapshot()");
    const after = await xacts();
    running = false;
    child.kill("SIGTERM"); // answers the waiters at once
    await Promise.allSettled(loops);
    client.close();
    return { waiters, seconds, perSecond: (after - before) / seconds };
  } finally {
    child?.kill("SIGTERM");
    await sleep(500);
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

runBench(main);
