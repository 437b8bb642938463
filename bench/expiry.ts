/**
 * Expiry under ingest load: how fast expireEvents removes a large backlog of expired acknowledged
 * rows, and whether it moves ingest latency. Measured in one run on one database:
 *   - ingest alone: 4 writers, each inserting 10-row batches with insertEvents in a loop, for
 *     BENCH_INGEST_SECONDS; per-statement latency recorded,
 *   - the same ingest while expireEvents (batchSize 5000) deletes the whole backlog.
 * Prints expired rows/s, ingest p50/p99 without and with expiry, and the p99 ratio (aim <= 1.2).
 *   BENCH_ROWS (default 1000000), BENCH_INGEST_SECONDS (default 10), BENCH_BATCH_SIZE (default 5000)
 */
import { performance } from "node:perf_hooks";
import { expireEvents } from "../src/jobs/expire-events";
import { connectPostgres, type Database } from "../src/store/database";
import { insertEvents } from "../src/store/events/insert-events";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchEvents, benchSchema, fmt, percentile, runBench } from "./support";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const INGEST_SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 10);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 5000);
/** The scheduler's default pause between full batches (EXPIRY_PAUSE_MS). */
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 25);
/** The scheduler's default share of time spent deleting (EXPIRY_MAX_DUTY). */
const MAX_DUTY = Number(process.env.BENCH_MAX_DUTY ?? 0.25);
const WRITERS = 4;
const DAY_MS = 86_400_000;
const ACK_RETENTION_SECONDS = 7 * 86_400;

/** Runs WRITERS insert loops until `until()` turns true; returns each statement's latency, ms. */
async function ingest(db: Database, until: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (!until()) {
        const batch = benchEvents(10);
        const t0 = performance.now();
        await insertEvents(db.prisma, batch);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies;
}

async function main(): Promise<void> {
  const started = performance.now();
  const schema = await benchSchema();
  // Writers + the expiry loop + the count query, with headroom.
  const db = connectPostgres(schema.url, { poolSize: WRITERS + 4 });
  try {
    await applyMigrations(db.migrator, loadMigrations());

    // The backlog: ROWS acknowledged 8–9 days ago (past the 7-day retention), written in one statement.
    let t0 = performance.now();
    await db.migrator.query(
      `INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, status, received_at, stored_at, available_at, delivery_count, leased_at, acknowledged_at)
       SELECT 'evt_old_' || lpad(g::text, 10, '0'), 'tenant-' || (g % 8), 'order.created', 'bench',
              jsonb_build_object('order', g, 'note', repeat('x', 200)), ARRAY['bench'], repeat('0', 64), 'acknowledged',
              t - interval '1 minute', t - interval '1 minute', t - interval '1 minute', 1, t - interval '30 seconds', t
       FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT $2::timestamptz + (g * interval '1 millisecond') AS t) AS ts`,
      [ROWS, new Date(Date.now() - 9 * DAY_MS).toISOString()],
    );
    await db.migrator.query("VACUUM ANALYZE events");
    // Flush the fill's dirty pages now, so a checkpoint it triggers does not land in either measured phase.
    await db.migrator.query("CHECKPOINT").catch(() => undefined); // needs superuser or pg_checkpoint; best effort
    const fillSeconds = (performance.now() - t0) / 1000;

    // Phase 1: ingest alone.
    const phase1End = performance.now() + INGEST_SECONDS * 1000;
    const baseline = await ingest(db, () => performance.now() >= phase1End);

    // Phase 2: the same ingest while expiry drains the backlog, run as the scheduler runs it: each
    // expireEvents call has the default schedule's budget (80% of 60 s) and the next starts when it ends.
    let expiring = true;
    let batches = 0;
    let expired = 0;
    t0 = performance.now();
    const expiry = (async () => {
      try {
        for (;;) {
          const r = await expireEvents(
            { prisma: db.prisma },
            { now: new Date(), batchSize: BATCH_SIZE, acknowledgedRetentionSeconds: ACK_RETENTION_SECONDS, deadRetentionSeconds: 14 * 86_400, timeBudgetMs: 48_000, pauseMs: PAUSE_MS, maxDuty: MAX_DUTY },
          );
          batches += r.batches;
          expired += r.acknowledged + r.dead;
          if (r.complete) return;
        }
      } finally {
        expiring = false;
      }
    })();
    const loaded = await ingest(db, () => !expiring);
    await expiry;
    const expirySeconds = (performance.now() - t0) / 1000;
    const left = Number((await db.migrator.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE status = 'acknowledged'"))[0]!.n);

    const p = (xs: number[], q: number) => fmt(percentile(xs, q), 2);
    const ratio = percentile(loaded, 99) / percentile(baseline, 99);
    process.stdout.write(
      [
        `bench:expiry  rows=${fmt(ROWS)} batchSize=${BATCH_SIZE} pause=${PAUSE_MS}ms maxDuty=${MAX_DUTY} writers=${WRITERS} (10 rows/INSERT)`,
        `  backlog fill (INSERT…SELECT + VACUUM ANALYZE + CHECKPOINT): ${fmt(fillSeconds, 1)} s`,
        `  expired ${fmt(expired)} rows in ${fmt(expirySeconds, 1)} s: ${fmt(expired / expirySeconds)} rows/s (${fmt(batches)} batches; ${fmt(left)} acknowledged rows left)`,
        `  ingest without expiry: ${fmt(baseline.length)} INSERTs, p50 ${p(baseline, 50)} ms, p99 ${p(baseline, 99)} ms, ${fmt((baseline.length * 10) / INGEST_SECONDS)} rows/s`,
        `  ingest with expiry   : ${fmt(loaded.length)} INSERTs, p50 ${p(loaded, 50)} ms, p99 ${p(loaded, 99)} ms, ${fmt((loaded.length * 10) / expirySeconds)} rows/s`,
        `  p99 ratio with/without expiry: ${fmt(ratio, 2)}  (aim <= 1.20)`,
        `  total ${fmt((performance.now() - started) / 1000, 1)} s`,
        "",
      ].join("\n"),
    );
  } finally {
    await db.close();
    await schema.drop();
  }
}

runBench(main);
