/**
 * Expiry under ingest load: how fast expireEvents removes a large backlog of expired acknowledged
 * rows, and whether it moves ingest latency. Measured in one run on one database, while 4 writers
 * insert 10-row batches with insertEvents in a loop (per-statement latency recorded):
 *   - a first window of ingest alone (BENCH_INGEST_SECONDS),
 *   - then expiry windows of at most BENCH_EXPIRY_WINDOW_SECONDS (one expireEvents call each,
 *     paced by its feedback controller: ExpiryPacer with the scheduler's default bounds, largest
 *     batch 5000), each followed by BENCH_ALONE_SECONDS of ingest alone, until the backlog is gone.
 *     The scheduler runs expiry the same way: a run takes at most 80 % of its interval.
 * "Without expiry" pools every window of ingest alone, so drift in the machine's speed over the
 * minutes of a run weighs on both sides of the ratio; the first window's figures print too.
 * Prints expired rows/s, ingest rows/s and p50/p99 without and with expiry, the p99 ratio (aim <= 1.2),
 * the pacing decisions (back-offs, speed-ups) and whether the backlog cleared within its budget.
 *   BENCH_ROWS (default 1000000), BENCH_INGEST_SECONDS (default 10), BENCH_EXPIRY_WINDOW_SECONDS
 *   (default 24), BENCH_ALONE_SECONDS (default 6), BENCH_BATCH_SIZE (default 5000),
 *   BENCH_EXPIRY_BUDGET_SECONDS (default 300): the expiry time (windows of ingest alone excluded)
 *   the backlog must clear in.
 *   BENCH_FIXED_DUTY: set (e.g. 0.25) to measure the old fixed duty cycle (with its 25 ms least pause) instead of the controller.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { expireEvents } from "../src/jobs/expire-events";
import { DEFAULT_PACING, ExpiryPacer, type PacingAction } from "../src/jobs/expiry-pacer";
import { connectPostgres, type Database } from "../src/store/database";
import { insertEvents } from "../src/store/events/insert-events";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchEvents, benchSchema, fmt, percentile, runBench } from "./support";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
// Ingest alone is measured in windows between expiry's windows, the way the scheduler runs it (a
// run takes at most 80 % of its interval, then the database rests until the next): machine speed
// that drifts over the minutes of a run then lands on both sides of the ratio, instead of on a
// baseline measured once before the drain.
const ALONE_SECONDS = Number(process.env.BENCH_ALONE_SECONDS ?? 6);
const EXPIRY_WINDOW_SECONDS = Number(process.env.BENCH_EXPIRY_WINDOW_SECONDS ?? 24);
// The first window of ingest alone, before any expiry ran (printed on its own as well).
const INGEST_SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 10);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 5000);
const BUDGET_SECONDS = Number(process.env.BENCH_EXPIRY_BUDGET_SECONDS ?? 300);
const FIXED_DUTY = process.env.BENCH_FIXED_DUTY ? Number(process.env.BENCH_FIXED_DUTY) : undefined;
const WRITERS = 4;
const DAY_MS = 86_400_000;
const ACK_RETENTION_SECONDS = 7 * 86_400;

type Phase = "first" | "alone" | "expiry";

/**
 * WRITERS insert loops, from construction until `stop()`. Each statement's latency, ms, goes to the phase
 * that was current when it started; `seconds` adds up the time spent in each phase.
 */
class Ingest {
  readonly latencies: Record<Phase, number[]> = { first: [], alone: [], expiry: [] };
  readonly seconds: Record<Phase, number> = { first: 0, alone: 0, expiry: 0 };
  private phase: Phase = "first";
  private since = performance.now();
  private stopped = false;
  private readonly loops: Promise<void>;

  constructor(db: Database) {
    this.loops = Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (!this.stopped) {
          const batch = benchEvents(10);
          const phase = this.phase;
          const t0 = performance.now();
          await insertEvents(db.prisma, batch);
          this.latencies[phase].push(performance.now() - t0);
        }
      }),
    ).then(() => undefined);
  }

  enter(phase: Phase): void {
    const now = performance.now();
    this.seconds[this.phase] += (now - this.since) / 1000;
    this.phase = phase;
    this.since = now;
  }

  async stop(): Promise<void> {
    this.enter(this.phase);
    this.stopped = true;
    await this.loops;
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const schema = await benchSchema();
  // Writers + the expiry loop + the count query, with headroom.
  const db = connectPostgres(schema.url, { poolSize: WRITERS + 4 });
  try {
    await applyMigrations(db.migrator, loadMigrations());

    // The backlog: ROWS acknowledged 8–9 days ago (past the 7-day retention), written in one statement.
    const t0 = performance.now();
    await db.migrator.query(
      `INSERT INTO subscriptions (tenant_id, name) SELECT 'tenant-' || g, 'default' FROM generate_series(0, 7) AS g ON CONFLICT DO NOTHING`,
    );
    // The backlog's days need their partitions (the migration makes one day back), as the worker's insert would make them.
    await db.migrator.query(`SELECT triggers_ensure_partitions($1::timestamptz - interval '2 minutes', $1::timestamptz + $2::int * interval '1 millisecond', NULL)`, [
      new Date(Date.now() - 9 * DAY_MS).toISOString(),
      ROWS + 1,
    ]);
    await db.migrator.query(
      `WITH src AS (
         SELECT 'evt_old_' || lpad(g::text, 10, '0') AS id, 'tenant-' || (g % 8) AS tenant_id, t
         FROM generate_series(1, $1::int) AS g,
              LATERAL (SELECT $2::timestamptz + (g * interval '1 millisecond') AS t) AS ts
       ),
       ev AS (
         INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, received_at, stored_at)
         SELECT id, tenant_id, 'order.created', 'bench', jsonb_build_object('order', id, 'note', repeat('x', 200)), ARRAY['bench'], repeat('0', 64),
                t - interval '1 minute', t - interval '1 minute'
         FROM src
       )
       INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, status, available_at, delivery_count, leased_at, acknowledged_at)
       SELECT s.id, src.id, src.tenant_id, 'order.created', 'bench', ARRAY['bench'], t - interval '1 minute', 'acknowledged', t - interval '1 minute', 1, t - interval '30 seconds', t
       FROM src JOIN subscriptions s ON s.tenant_id = src.tenant_id AND s.name = 'default'`,
      [ROWS, new Date(Date.now() - 9 * DAY_MS).toISOString()],
    );
    await db.migrator.query("VACUUM ANALYZE events");
    await db.migrator.query("VACUUM ANALYZE deliveries");
    // Flush the fill's dirty pages now, so a checkpoint it triggers does not land in either measured phase.
    await db.migrator.query("CHECKPOINT").catch(() => undefined); // needs superuser or pg_checkpoint; best effort
    const fillSeconds = (performance.now() - t0) / 1000;

    // The first window of ingest alone, then expiry windows with windows of ingest alone between them.
    const ingest = new Ingest(db);
    await sleep(INGEST_SECONDS * 1000);

    // Expiry runs as the scheduler runs it, in windows of EXPIRY_WINDOW_SECONDS (each expireEvents
    // call has that budget). The backlog's deadline is the bench's budget of expiry time: the
    // windows of ingest alone do not count against it, so the pacer's floor comes from what is left of it.
    let batches = 0;
    let expired = 0;
    let runs = 0;
    let cleared = false;
    let lastReason: string | undefined;
    let expiryMs = 0;
    const pacer = FIXED_DUTY === undefined ? new ExpiryPacer({ ...DEFAULT_PACING, maxBatchSize: BATCH_SIZE }) : undefined;
    const decisions: { action: PacingAction; duty: number; floor: number; batchSize: number; interference: number | undefined; slowdown: number | undefined }[] = [];
    pacer?.onDecision((action, s) => decisions.push({ action, duty: s.duty, floor: s.floorDuty, batchSize: s.batchSize, interference: s.interference, slowdown: s.slowdown }));
    const wallStarted = performance.now();
    while (expiryMs < BUDGET_SECONDS * 1000) {
      if (runs > 0) {
        ingest.enter("alone");
        await sleep(ALONE_SECONDS * 1000);
      }
      ingest.enter("expiry");
      const left = BUDGET_SECONDS * 1000 - expiryMs;
      const runStarted = performance.now();
      const r = await expireEvents(
        { prisma: db.prisma },
        {
          now: new Date(), batchSize: BATCH_SIZE, acknowledgedRetentionSeconds: ACK_RETENTION_SECONDS,
          // The row-by-row path as it remains clears only rows received before now - max(ack, dead
          // retention) - one partition interval (partitions a live row holds past their time). The
          // backlog has no dead rows and is 9 days old: with the dead window at the ack window's
          // 7 days and one-minute partitions, all of it qualifies, as the bench measured before.
          deadRetentionSeconds: ACK_RETENTION_SECONDS,
          partitionIntervalSeconds: 60,
          timeBudgetMs: Math.min(EXPIRY_WINDOW_SECONDS * 1000, left),
          ...(pacer ? { pacer, drainWithinMs: left } : { maxDuty: FIXED_DUTY, pauseMs: 25 }),
        },
      );
      expiryMs += performance.now() - runStarted;
      runs++;
      batches += r.batches;
      expired += r.acknowledged + r.dead;
      lastReason = r.incompleteReason;
      if (r.complete) {
        cleared = true;
        break;
      }
    }
    const wallSeconds = (performance.now() - wallStarted) / 1000;
    // One more window of ingest alone, so the last expiry window has one after it as the first has one before it.
    ingest.enter("alone");
    await sleep(ALONE_SECONDS * 1000);
    await ingest.stop();
    const expirySeconds = expiryMs / 1000;
    const left = Number((await db.migrator.query<{ n: string }>("SELECT count(*) AS n FROM deliveries WHERE status = 'acknowledged'"))[0]!.n);

    const p = (xs: number[], q: number) => fmt(percentile(xs, q), 2);
    const { first, expiry: loaded } = ingest.latencies;
    // Ingest alone: the first window and every window between and after expiry's.
    const baseline = [...first, ...ingest.latencies.alone];
    const aloneSeconds = ingest.seconds.first + ingest.seconds.alone;
    const ratio = percentile(loaded, 99) / percentile(baseline, 99);
    const firstRatio = percentile(loaded, 99) / percentile(first, 99);
    const snap = pacer?.snapshot();
    const r2 = (x: number | undefined) => (x === undefined ? "-" : fmt(x, 2));
    // Pacing trace: every decision would be long; show the first ones and then one in ten.
    const trace = decisions
      .map((d, i) => ({ ...d, i }))
      .filter((d) => d.i < 6 || d.i % 10 === 0 || d.i === decisions.length - 1)
      .map((d) => `#${d.i + 1} ${d.action} (interference ${r2(d.interference)}, slowdown ${r2(d.slowdown)}) -> duty ${fmt(d.duty, 3)} (deadline floor ${fmt(d.floor, 3)}), batch ${d.batchSize}`);
    const dutyMean = decisions.length ? decisions.reduce((a, d) => a + d.duty, 0) / decisions.length : undefined;
    process.stdout.write(
      [
        `bench:expiry  rows=${fmt(ROWS)} writers=${WRITERS} (10 rows/INSERT) ` +
          (pacer
            ? `pacing=feedback (batch ${pacer.bounds.minBatchSize}-${pacer.bounds.maxBatchSize}, duty ${pacer.bounds.minDuty}-${pacer.bounds.maxDuty}, max rest ${pacer.bounds.maxRestMs} ms, interference tolerance ${pacer.bounds.interferenceTolerance}, latency tolerance ${pacer.bounds.latencyTolerance})`
            : `pacing=fixed duty ${FIXED_DUTY} batch ${BATCH_SIZE}`),
        `  backlog fill (INSERT…SELECT + VACUUM ANALYZE + CHECKPOINT): ${fmt(fillSeconds, 1)} s`,
        `  expired ${fmt(expired)} rows in ${fmt(expirySeconds, 1)} s of expiry windows: ${fmt(expired / expirySeconds)} rows/s (${fmt(batches)} batches, ${runs} runs of at most ${EXPIRY_WINDOW_SECONDS} s, ${ALONE_SECONDS} s of ingest alone after each; ${fmt(wallSeconds, 1)} s wall; ${fmt(left)} acknowledged rows left)`,
        `  budget ${BUDGET_SECONDS} s of expiry time: ${cleared ? "cleared within budget" : `NOT cleared within budget (last run: ${lastReason ?? "?"})`}`,
        ...(snap
          ? [
              `  pacing decisions: ${snap.backoffs + snap.speedups} (${snap.backoffs} back-offs, ${snap.speedups} speed-ups); mean duty ${r2(dutyMean)}; ` +
                `deadline floor in force at ${decisions.filter((d) => d.floor > 0 && d.floor >= d.duty - 1e-9).length}, above max duty (deadline at risk) at ${decisions.filter((d) => d.floor > pacer!.bounds.maxDuty).length}; ` +
                `AIMD duty at the end ${fmt(snap.duty, 3)}, batch ${snap.batchSize}; baseline ${fmt((snap.baselineMsPerRow ?? 0) * 1000, 1)} µs/row`,
              ...trace.map((t) => `    ${t}`),
            ]
          : []),
        `  ingest without expiry: ${fmt(baseline.length)} INSERTs in ${fmt(aloneSeconds, 1)} s, p50 ${p(baseline, 50)} ms, p99 ${p(baseline, 99)} ms, ${fmt((baseline.length * 10) / aloneSeconds)} rows/s`,
        `    first window only  : ${fmt(first.length)} INSERTs in ${fmt(ingest.seconds.first, 1)} s, p50 ${p(first, 50)} ms, p99 ${p(first, 99)} ms, ${fmt((first.length * 10) / ingest.seconds.first)} rows/s (p99 ratio against it: ${fmt(firstRatio, 2)})`,
        `  ingest with expiry   : ${fmt(loaded.length)} INSERTs in ${fmt(ingest.seconds.expiry, 1)} s, p50 ${p(loaded, 50)} ms, p99 ${p(loaded, 99)} ms, ${fmt((loaded.length * 10) / ingest.seconds.expiry)} rows/s`,
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
