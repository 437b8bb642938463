import { setTimeout as sleep } from "node:timers/promises";
/**
 * Fan-out isolation: can one tenant's fan-out delay another tenant's events? Tenant A has the most
 * subscriptions MAX_SUBSCRIPTIONS_PER_TENANT allows (default 100, `default` included), all matching
 * every event, and sends batches of 100 events as fast as its rate limit allows (RATE_LIMIT_PER_MINUTE,
 * default 6 000 requests a minute; a 429 waits its Retry-After). Tenant B sends single events at a
 * steady rate. API, worker and the SQS emulator run as separate processes on real Postgres and Redis.
 * Prints B's store latency (202 -> row visible in Postgres, polled every 10 ms) p50/p99 and A's stored
 * events/s, and last `fanout: other tenant p99 <ms> ms (aim <= 5000)`.
 * B runs alone first (BENCH_FANOUT_BASELINE_SECONDS, default 10) for the same latency without A.
 *   BENCH_FANOUT_SECONDS (default 30), BENCH_FANOUT_B_RATE (events/s, default 20),
 *   BENCH_FANOUT_A_IN_FLIGHT (A's concurrent batch requests, default 4), BENCH_FANOUT_RECEIVERS (default 16)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { connectPostgres } from "../src/store/database";
import { createApiKey } from "../src/store/api-keys";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchSchema, fmt, httpClient, percentile, runBench } from "./support";
import { freePort, spawnEmulator, waitForHttp } from "../src/dev/local-services";

const SECONDS = Number(process.env.BENCH_FANOUT_SECONDS ?? 30);
const B_RATE = Number(process.env.BENCH_FANOUT_B_RATE ?? 20);
const A_IN_FLIGHT = Number(process.env.BENCH_FANOUT_A_IN_FLIGHT ?? 4);
/** B alone first, for its latency on this machine without A. */
const BASELINE_SECONDS = Number(process.env.BENCH_FANOUT_BASELINE_SECONDS ?? 10);
/** How long B's last events may take to appear after sending stops before they count as never stored. */
const TAIL_MS = 60_000;

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  const children: ChildProcess[] = [];
  const stamp = Date.now();
  try {
    await applyMigrations(db.migrator, loadMigrations());
    const scopes = ["events:write", "subscriptions:manage"] as const;
    const keyA = (await createApiKey(db.prisma, { tenantId: "tenant-a", name: "bench", scopes: [...scopes] })).secret;
    const keyB = (await createApiKey(db.prisma, { tenantId: "tenant-b", name: "bench", scopes: [...scopes] })).secret;
    const port = await freePort();
    const metricsPort = await freePort();
    const env = {
      ...process.env,
      DATABASE_URL: schema.url,
      SQS_ENDPOINT: emulator.endpoint,
      SQS_QUEUE_NAME: `bench-fanout-${stamp}`,
      REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
      REDIS_PREFIX: `bench-fanout-${stamp}`,
      LOG_LEVEL: "warn",
      WORKER_WAIT_SECONDS: "1",
      WORKER_RECEIVERS: process.env.BENCH_FANOUT_RECEIVERS ?? "16",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    const config = loadConfig(env);
    const cli = join(__dirname, "..", "src", "cli", "main.js");
    children.push(spawn(process.execPath, [cli, "api"], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, PORT: String(port) } }));
    await waitForHttp(`http://127.0.0.1:${port}/readyz`);
    children.push(spawn(process.execPath, [cli, "worker"], { stdio: ["ignore", "ignore", "inherit"], env: { ...env, METRICS_PORT: String(metricsPort) } }));
    await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`);
    const client = httpClient(`http://127.0.0.1:${port}`, A_IN_FLIGHT + 64);
    const json = (key: string) => ({ "content-type": "application/json", authorization: `Bearer ${key}` });

    // A: every subscription the quota allows, each matching every event.
    const max = config.limits.maxSubscriptionsPerTenant;
    for (let i = 1; i < max; i++) {
      const r = await client.request("POST", "/subscriptions", json(keyA), JSON.stringify({ name: `sub-${i}` }));
      if (r.status !== 201) throw new Error(`creating subscription ${i}: ${r.status} ${r.body}`);
    }
    const refused = await client.request("POST", "/subscriptions", json(keyA), JSON.stringify({ name: "one-too-many" }));
    if (refused.status !== 409) throw new Error(`the quota did not hold: ${refused.status}`);

    const sql = <R>(text: string, params: unknown[] = []) => db.migrator.query<R>(text, params);
    const countA = async () => Number((await sql<{ n: string }>("SELECT count(*)::text AS n FROM events WHERE tenant_id = 'tenant-a'"))[0]!.n);

    const batch = JSON.stringify({ events: Array.from({ length: 100 }, (_, i) => ({ type: "bench.fanout", payload: { i, note: "x".repeat(100) } })) });

    /** B's steady stream for `seconds`, with A flooding alongside or not; B's latencies and A's counts. */
    const phase = async (seconds: number, withA: boolean) => {
      let sending = true;
      let aAccepted = 0;
      let aLimited = 0;
      let aFailed = 0;
      const producersA = Array.from({ length: withA ? A_IN_FLIGHT : 0 }, async () => {
        while (sending) {
          const r = await client.request("POST", "/events/batch", json(keyA), batch).catch(() => ({ status: 0, body: "" }));
          if (r.status === 202) aAccepted += 100;
          else if (r.status === 429) {
            aLimited++;
            await sleep(250); // the window reopens within its minute; a short pause keeps A at the limit
          } else {
            aFailed++;
            await sleep(50);
          }
        }
      });
      // B: single events on schedule; latency from its 202 to the row being visible.
      const acceptedAt = new Map<string, number>();
      const latencies: number[] = [];
      let bFailed = 0;
      let tailDeadline = Infinity;
      const watcher = (async () => {
        while (sending || (acceptedAt.size > 0 && performance.now() < tailDeadline)) {
          const ids = [...acceptedAt.keys()];
          if (ids.length > 0) {
            const seen = await sql<{ id: string }>("SELECT id FROM events WHERE tenant_id = 'tenant-b' AND id = ANY($1::text[])", [ids]);
            const now = performance.now();
            for (const { id } of seen) {
              latencies.push(now - acceptedAt.get(id)!);
              acceptedAt.delete(id);
            }
          }
          await sleep(10);
        }
      })();
      const aStart = await countA();
      const start = performance.now();
      const sendsB: Promise<void>[] = [];
      for (let i = 0; i < seconds * B_RATE; i++) {
        const wait = start + (i * 1000) / B_RATE - performance.now();
        if (wait > 1) await sleep(wait);
        sendsB.push(
          client
            .request("POST", "/events", json(keyB), JSON.stringify({ type: "bench.other", payload: { i } }))
            .then((r) => {
              if (r.status === 202) acceptedAt.set((JSON.parse(r.body) as { id: string }).id, performance.now());
              else bFailed++;
            })
            .catch(() => void bFailed++),
        );
      }
      await Promise.all(sendsB);
      const elapsed = (performance.now() - start) / 1000;
      const aStored = (await countA()) - aStart;
      sending = false;
      tailDeadline = performance.now() + TAIL_MS;
      await Promise.all(producersA);
      await watcher;
      const sent = seconds * B_RATE - bFailed;
      const missing = acceptedAt.size;
      return {
        elapsed,
        sent,
        missing,
        bFailed,
        p50: percentile(latencies, 50),
        p99: missing > sent * 0.01 ? Infinity : percentile(latencies, 99),
        max: latencies.length ? Math.max(...latencies) : NaN,
        aAccepted,
        aLimited,
        aFailed,
        aStored,
      };
    };

    const ms = (v: number) => (Number.isFinite(v) ? `${fmt(v, 0)} ms` : "∞ (more than 1% never stored within 60 s of the end)");
    const alone = await phase(BASELINE_SECONDS, false);
    const r = await phase(SECONDS, true);
    process.stdout.write(
      [
        `bench:fanout  tenant A: ${max} subscriptions (all matching), batches of 100 as fast as ${config.limits.rateLimitPerMinute} requests/min allow (${A_IN_FLIGHT} in flight); tenant B: ${B_RATE} events/s`,
        `  baseline, B alone ${fmt(alone.elapsed, 1)} s: store latency (202 -> row visible) p50 ${ms(alone.p50)}, p99 ${ms(alone.p99)}`,
        `  with A, ${fmt(r.elapsed, 1)} s:`,
        `  tenant A: accepted ${fmt(r.aAccepted / r.elapsed)} events/s (${r.aLimited} answers 429, ${r.aFailed} other refusals), stored ${fmt(r.aStored / r.elapsed)} events/s (${fmt((r.aStored * max) / r.elapsed)} deliveries/s)`,
        `  tenant B: ${r.sent} accepted, store latency (202 -> row visible) p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, max ${ms(r.max)}; ${r.missing} not stored within 60 s of the end, ${r.bFailed} refused; p99 / baseline p99 = ${fmt(r.p99 / alone.p99, 1)}`,
        `fanout: other tenant p99 ${Number.isFinite(r.p99) ? fmt(r.p99, 0) : "∞"} ms (aim <= 5000)`,
        "",
      ].join("\n"),
    );
    client.close();
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await sleep(1000);
    await db.close();
    await schema.drop().catch(() => undefined);
    emulator.stop();
  }
}

runBench(main);
