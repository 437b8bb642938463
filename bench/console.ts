/**
 * The console's API calls with 1 000 000 events stored: each call the console makes, over HTTP
 * against an in-process API on Postgres, BENCH_SAMPLES times; prints p50 / p99 / max (ms).
 *
 * One tenant ("console") holds BENCH_EVENTS events (default 1 000 000) in its default
 * subscription, received over the last 50 minutes (so the stats chart has a full hour to read):
 * 90 % acknowledged, 9 % pending, 1 % dead; type `order.created` but for 0.1 % `order.rare`,
 * every 1 000th payload carrying the word "needle". A second tenant holds 10 000 events. The fill
 * is SQL generate_series straight into the tables (the store's own layout), then VACUUM ANALYZE.
 * Aim: every call under 1 s (docs/performance.md records the numbers).
 *
 *   BENCH_EVENTS   (default 1000000)
 *   BENCH_SAMPLES  (default 20 per call)
 * The schema is dropped at the end (BENCH_KEEP_SCHEMA=1 keeps it and prints its name).
 */
import { loadConfig } from "../src/config";
import { buildContainer } from "../src/container";
import { startApiRole } from "../src/roles/api";
import { createApiKey } from "../src/store/api-keys";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { createLogger } from "../src/observability/logger";
import { spawnEmulator } from "../src/dev/local-services";
import { benchSchema, fmt, percentile, runBench } from "./support";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const TENANT = "console";

/**
 * Rows `from`..`to` (1-based, inclusive) of a tenant's events with their default deliveries: row i
 * is received `(total - i) * spanMs / total` ms before now, so the newest is now and rows are in
 * time order. Ids are evt_ + a digit for the tenant + i in 25 hex digits (valid ULID characters).
 */
function fillSql(tenant: string, digit: number, from: number, to: number, total: number, spanMs: number): string {
  return `WITH src AS (
      SELECT 'evt_${digit}' || upper(lpad(to_hex(i), 25, '0')) AS id, i,
             now() - ((${total} - i)::double precision * ${spanMs / total} * interval '1 millisecond') AS at,
             CASE WHEN i % 1000 = 7 THEN 'order.rare' ELSE 'order.created' END AS type,
             (CASE WHEN i % 100 = 3 THEN 'dead' WHEN i % 100 BETWEEN 10 AND 18 THEN 'pending' ELSE 'acknowledged' END)::event_status AS status
      FROM generate_series(${from}, ${to}) AS i),
    ev AS (
      INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, received_at, stored_at)
      SELECT id, '${tenant}', type, 'shop',
             jsonb_build_object('order', i, 'customer', 'customer-' || (i % 5000), 'note', CASE WHEN i % 1000 = 0 THEN 'a needle here' ELSE 'hay hay hay hay hay' END),
             ARRAY['bench'], 'h', at, at
      FROM src
    )
    INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, available_at, status, delivery_count, acknowledged_at, dead_at)
    SELECT s.id, src.id, '${tenant}', src.type, 'shop', ARRAY['bench'], src.at, src.at, src.status,
           CASE WHEN src.status = 'pending' THEN 0 ELSE 1 END,
           CASE WHEN src.status = 'acknowledged' THEN src.at END, CASE WHEN src.status = 'dead' THEN src.at END
    FROM src JOIN subscriptions s ON s.tenant_id = '${tenant}' AND s.name = 'default'`;
}

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const stamp = Date.now();
  const config = loadConfig({
    DATABASE_URL: schema.url,
    SQS_ENDPOINT: emulator.endpoint,
    SQS_QUEUE_NAME: `bench-console-${stamp}`,
    PORT: "0",
    LOG_LEVEL: "warn",
    RATE_LIMIT_PER_MINUTE: "100000",
  });
  const c = await buildContainer(config, { logger: createLogger("warn"), poolSize: 5 });
  try {
    await applyMigrations(c.db.migrator, loadMigrations());
    const key = (await createApiKey(c.db.prisma, { tenantId: TENANT, name: "bench", scopes: ["admin"] })).secret;
    await createApiKey(c.db.prisma, { tenantId: "other", name: "bench", scopes: ["admin"] });
    const sql = (text: string) => c.db.migrator.query(text, []);
    await sql(`INSERT INTO subscriptions (tenant_id, name) VALUES ('${TENANT}', 'default'), ('other', 'default') ON CONFLICT DO NOTHING`);
    const t0 = performance.now();
    for (let done = 0; done < EVENTS; done += 250_000) await sql(fillSql(TENANT, 1, done + 1, Math.min(EVENTS, done + 250_000), EVENTS, 50 * 60_000));
    await sql(fillSql("other", 2, 1, 10_000, 10_000, 50 * 60_000));
    await sql("VACUUM ANALYZE events");
    await sql("VACUUM ANALYZE deliveries");
    console.log(`filled ${fmt(EVENTS)} events (+10 000 of another tenant) in ${fmt((performance.now() - t0) / 1000, 1)} s`);

    const role = await startApiRole(c, { metricsServer: false, queueDepth: false });
    const base = `http://127.0.0.1:${role.api.port}`;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const first = await call("GET", "/events?limit=50");
    const someId = first.data[25].id as string;
    const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    const cases: Array<[string, () => Promise<unknown>]> = [
      ["GET /key", () => call("GET", "/key")],
      ["GET /events (first page, 50)", () => call("GET", "/events?limit=50")],
      ["GET /events (page 2 by cursor)", () => call("GET", `/events?limit=50&cursor=${first.next_cursor}`)],
      ["GET /events?status=dead", () => call("GET", "/events?limit=50&status=dead")],
      ["GET /events?status=pending", () => call("GET", "/events?limit=50&status=pending")],
      ["GET /events?since&until (10 min window)", () => call("GET", `/events?limit=50&since=${minutesAgo(30)}&until=${minutesAgo(20)}`)],
      ["GET /events?type=order.rare (bounded scan)", () => call("GET", "/events?limit=50&type=order.rare")],
      ["GET /events?q=needle (bounded scan)", () => call("GET", "/events?limit=50&q=needle")],
      ["GET /events?after (tail, no wait)", () => call("GET", `/events?limit=50&after=${first.tail_cursor}`)],
      ["GET /events/{id}", () => call("GET", `/events/${someId}`)],
      ["GET /subscriptions", () => call("GET", "/subscriptions")],
      ["GET /subscriptions/default/stats", () => call("GET", "/subscriptions/default/stats")],
      ["POST /subscriptions/default/replay (1 min)", () => call("POST", "/subscriptions/default/replay", { since: minutesAgo(41), until: minutesAgo(40) })],
      ["POST /subscriptions/default/redrive (type)", () => call("POST", "/subscriptions/default/redrive", { type: "order.rare" })],
    ];
    console.log(`${SAMPLES} samples per call, ms`);
    console.log("call".padEnd(46), "p50".padStart(8), "p99".padStart(8), "max".padStart(8));
    for (const [name, fn] of cases) {
      await fn(); // warm
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const s = performance.now();
        await fn();
        times.push(performance.now() - s);
      }
      console.log(name.padEnd(46), fmt(percentile(times, 50), 1).padStart(8), fmt(percentile(times, 99), 1).padStart(8), fmt(Math.max(...times), 1).padStart(8));
    }
    await role.close();
  } finally {
    await c.close();
    if (process.env.BENCH_KEEP_SCHEMA === "1") console.log(`kept schema ${schema.schema}`);
    else await schema.drop();
    await emulator.stop();
  }
}

runBench(main);
