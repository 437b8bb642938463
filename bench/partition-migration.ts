/**
 * How long migration 20261207000100_partitioned_history takes on a populated database: a schema at
 * the previous migration is filled with BENCH_ROWS events (default 1 000 000) and one delivery each,
 * received over BENCH_DAYS days (default 7) in every status, one in ten with an idempotency key; then
 * the migration is applied through the project's runner (one transaction: rename, partitions, copy,
 * keys and indexes, drop). Prints the fill, the migration's time and its time per million rows.
 *   BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/triggers_bench)
 */
import { performance } from "node:perf_hooks";
import { connectPostgres } from "../src/store/database";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchSchema, fmt, runBench } from "./support";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const DAYS = Number(process.env.BENCH_DAYS ?? 7);
const MIGRATION = "20261207000100_partitioned_history";

runBench(async () => {
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  try {
    const all = loadMigrations();
    await applyMigrations(db.migrator, all.filter((m) => m.name < MIGRATION));
    const t0 = performance.now();
    await db.migrator.query(`INSERT INTO subscriptions (tenant_id, name) SELECT 'tenant-' || t, 'default' FROM generate_series(0, 9) t`);
    await db.migrator.query(
      `INSERT INTO events (id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, received_at)
       SELECT 'evt_' || lpad(g::text, 26, '0'), 'tenant-' || (g % 10), 'bench.migrate', 'src', '{"n":1}'::jsonb, ARRAY['t'],
              CASE WHEN g % 10 = 0 THEN 'key-' || g END, repeat('0', 64), now() - ($2::int * interval '1 day') * (g::double precision / $1::int)
       FROM generate_series(1, $1::int) g`,
      [ROWS, DAYS],
    );
    await db.migrator.query(
      `INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, status, acknowledged_at, dead_at, delivery_count)
       SELECT s.id, e.id, e.tenant_id, e.type, e.source, e.tags, e.received_at, st.status::event_status,
              CASE WHEN st.status = 'acknowledged' THEN e.received_at END, CASE WHEN st.status = 'dead' THEN e.received_at END, 1
       FROM events e JOIN subscriptions s ON s.tenant_id = e.tenant_id
       CROSS JOIN LATERAL (SELECT (ARRAY['pending', 'delivered', 'acknowledged', 'acknowledged', 'dead'])[1 + (hashtext(e.id) & 4)] AS status) st`,
    );
    await db.migrator.query("VACUUM ANALYZE events");
    await db.migrator.query("VACUUM ANALYZE deliveries");
    const filled = (performance.now() - t0) / 1000;
    console.log(`filled ${fmt(ROWS)} events and ${fmt(ROWS)} deliveries over ${DAYS} days in ${fmt(filled, 1)} s`);
    const t1 = performance.now();
    const result = await applyMigrations(db.migrator, all);
    const seconds = (performance.now() - t1) / 1000;
    if (!result.applied.includes(MIGRATION)) throw new Error(`${MIGRATION} was not applied`);
    const parts = (await db.migrator.query<{ parts: number }>(`SELECT count(*)::int AS parts FROM pg_inherits WHERE inhparent = 'events'::regclass`))[0]?.parts;
    console.log(`migration ${MIGRATION}: ${fmt(seconds, 1)} s for ${fmt(ROWS)} events + ${fmt(ROWS)} deliveries (${parts} daily partitions)`);
    console.log(`partition-migration: ${fmt(seconds / (ROWS / 1_000_000), 1)} s per million events (with one delivery each)`);
  } finally {
    await db.close();
    await schema.drop();
  }
});
