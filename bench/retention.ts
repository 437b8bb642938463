/**
 * Retention soak (issue 34): a steady open-loop ingest for BENCH_RETENTION_MINUTES with a consumer
 * leasing and acknowledging, while the retention step drops partitions past retention, on
 * shortened settings so several partition pairs are created and dropped during the run. Store level,
 * on its own bench schema (no HTTP, no SQS): what the worker, a consumer and the scheduler do to
 * Postgres, each on a pool of its own as in their own processes.
 *   - Ingest: insertEvents of BENCH_BATCH events (default 10, benchEvents' 8 tenants, one in ten
 *     with an idempotency key) at BENCH_RATE events/s (default 500: a batch every 20 ms), open loop:
 *     each send is scheduled by the clock, whatever became of the previous ones, and its latency
 *     runs from its scheduled time (a stall shows as the queue of sends behind it).
 *   - Consumer: leaseEvents (100, visibility 30 s) then ackLeases of what it got, per tenant in
 *     turn, continuously (a pause of 100 ms after a round that leased less than 100 in all).
 *   - Retention step every BENCH_RETENTION_INTERVAL_SECONDS (default 10): ensurePartitions then
 *     retirePartitions, the scheduler's partition step (src/roles/scheduler.ts, maintainPartitions),
 *     with PARTITIONS_AHEAD 3, partitions BENCH_PARTITION_SECONDS wide (default 60) and ack and dead
 *     retention BENCH_RETENTION_SECONDS (default 60). The row-by-row expireEvents the job runs after
 *     it is left out: with nothing held past its time it has nothing to delete.
 *   - Held events: the first BENCH_HELD_EVENTS batches (default 50) carry one event of a tenant the
 *     consumer never reads, so the first partitions with data keep a pending delivery: they must
 *     wait, never drop (retention.ts), and their events must be there at the end.
 * The migration makes day-wide partitions; on the fresh (empty) schema they are dropped first and
 * the step makes the short ones.
 *
 * Per minute it prints the size of the history (every partition of events and deliveries with
 * their indexes and TOAST, plus idempotency_keys), live rows, partitions present (and waiting),
 * the ingest and lease p99 of that minute and the partitions dropped in it. Then the summary:
 *   - size last / first after warm-up (aim <= 1.1); warm-up: the minutes up to and including the
 *     first in which a partition holding rows was dropped;
 *   - ingest p99 with a drop vs without (aim <= 1.05), over the windows between one retention step
 *     and the next after warm-up: with 60 s partitions a drop falls in nearly every minute, so
 *     minutes cannot be split into ones with and without a drop; a window holds one step;
 *   - WAL per retired row (an events row or a deliveries row) of the drop against the old DELETE
 *     path, like for like, once the load has stopped: two partitions' worth of rows shaped as the
 *     run's (one in KEYED_EVERY keyed) are ingested before the oldest partition, leased and
 *     acknowledged; the older is deleted by deleteExpiredBatch (5 000 a batch, the expiry job's
 *     statement), then every pair due with retention 0 (the newer, and any the consumer has emptied)
 *     is retired by retirePartitions. Each starts right after a CHECKPOINT, so every page it changes
 *     pays its full-page image, as production's rows do when they go days after their last write.
 *     The server's WAL around each over the rows it removed. Aim: >= 20x less. The summary also
 *     prints the drops during the run against the same DELETE figure: their WAL is the whole
 *     server's while retirePartitions ran, so it also holds the ingest and the consumer beside
 *     them (an upper bound), and that figure less the traffic's rate between steps;
 *   - lost pending events: every event inserted and never acknowledged by the consumer (the held
 *     ones, the consumer's tail) must still have its events and deliveries rows at the end: 0.
 * The last line reads `retention: size <last/first> p99 ratio <x> wal <n>x less lost <count>`
 * (n/a where the run was too short for a figure). The acceptance (issue 34) needs three consecutive
 * quiet 10-minute runs meeting the aims; figures: docs/performance.md.
 *   BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/triggers_bench)
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "pg";
import type { QueuedEvent } from "../src/domain/queued-event";
import { ackLeases } from "../src/store/events/ack-events";
import { insertEvents } from "../src/store/events/insert-events";
import { leaseEvents } from "../src/store/events/lease-events";
import { connectPostgres, parseDatabaseUrl, type Database } from "../src/store/database";
import { deleteExpiredBatch } from "../src/store/expiry";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { ensurePartitions, listPartitions, type PartitionLayout } from "../src/store/partitions";
import { retirePartitions } from "../src/store/retention";
import { resolveSubscription } from "../src/store/subscriptions";
import { benchEvents, benchSchema, fmt, percentile, runBench, walPosition } from "./support";

/** A whole number from the environment, at least `min`; anything else stops the bench before it starts. */
function setting(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${raw}`);
  return n;
}

const MINUTES = setting("BENCH_RETENTION_MINUTES", 10, 1);
const PARTITION_SECONDS = setting("BENCH_PARTITION_SECONDS", 60, 60);
const RETENTION_SECONDS = setting("BENCH_RETENTION_SECONDS", 60, 1);
const RATE = setting("BENCH_RATE", 500, 1);
const BATCH = setting("BENCH_BATCH", 10, 1);
const STEP_SECONDS = setting("BENCH_RETENTION_INTERVAL_SECONDS", 10, 1);
const HELD_EVENTS = setting("BENCH_HELD_EVENTS", 50, 0);
/** PARTITIONS_AHEAD's default. */
const AHEAD = 3;
/** The consumer's lease: size, visibility (s), and max deliveries (never reached: every lease is acknowledged). */
const LEASE = 100;
const VISIBILITY_SECONDS = 30;
const MAX_DELIVERIES = 10;
/** benchEvents' tenants; the held tenant is none of them. */
const TENANTS = Array.from({ length: 8 }, (_, i) => `tenant-${i}`);
const HELD_TENANT = "tenant-held";
/** One event in this many carries an idempotency key (its key row goes with its partition). */
const KEYED_EVERY = 10;
/** EXPIRY_BATCH_SIZE's default: the old path's largest DELETE. */
const DELETE_BATCH = 5000;
const MINUTE_MS = 60_000;

const layout: PartitionLayout = { intervalSeconds: PARTITION_SECONDS, ahead: AHEAD };
const r2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
const mb = (bytes: number) => `${fmt(bytes / 1_048_576, 1)} MB`;

/** What one minute of the run saw; `sample` is taken at its end. */
interface Minute {
  readonly ingest: number[];
  readonly lease: number[];
  dropped: number;
  retiredRows: number;
  /** Dropped a partition that held rows. */
  droppedRows: boolean;
  sample?: { bytes: number; events: number; deliveries: number; partitions: number; waiting: number };
}

/** One retention step: its timing, what it dropped, and the server's WAL around retirePartitions. */
interface Step {
  readonly index: number;
  readonly retired: number;
  readonly rows: number;
  readonly waiting: number;
  readonly retireMs: number;
  /** WAL written (by the whole server) while retirePartitions ran, bytes. */
  readonly wal: number;
  /** That WAL less the rate of the traffic between the previous step and this one times the call's duration. */
  readonly walNet: number;
}

/**
 * Events the run inserted: per batch its received_at and size (to count what a dropped range held),
 * and the ids inserted and not acknowledged yet. An ack may come back before its insert has (the
 * lease sees the row once it committed): such ids wait in `ackedFirst` and never enter `pending`.
 */
class Ledger {
  private readonly batches: Array<{ at: number; n: number }> = [];
  readonly pending = new Set<string>();
  private readonly ackedFirst = new Set<string>();

  inserted(receivedAt: number, ids: readonly string[]): void {
    this.batches.push({ at: receivedAt, n: ids.length });
    for (const id of ids) {
      if (!this.ackedFirst.delete(id)) this.pending.add(id);
    }
  }

  acknowledged(id: string): void {
    if (!this.pending.delete(id)) this.ackedFirst.add(id);
  }

  /** Events inserted with received_at in [lower, upper). */
  eventsIn(range: { lower: Date; upper: Date }): number {
    const lo = range.lower.getTime();
    const hi = range.upper.getTime();
    let n = 0;
    for (const b of this.batches) if (b.at >= lo && b.at < hi) n += b.n;
    return n;
  }
}

let made = 0;
/** `n` events as benchEvents makes them, one in KEYED_EVERY with an idempotency key, under `tenantOf` when given. */
function batchOf(n: number, tenantOf?: (i: number) => string): QueuedEvent[] {
  return benchEvents(n).map((e, i) => ({
    ...e,
    ...(tenantOf ? { tenant_id: tenantOf(i) } : {}),
    idempotency_key: made++ % KEYED_EVERY === 0 ? `key-${e.id}` : null,
  }));
}

/** Leases a tenant's deliverable events (LEASE at most) and acknowledges them by their leases; answers the ids acknowledged. */
async function leaseAndAck(db: Database, tenantId: string, subscriptionId: number, onLease?: (ms: number) => void): Promise<{ leased: number; acked: string[] }> {
  const t = performance.now();
  const { events } = await leaseEvents(db.prisma, { tenantId, subscriptionId, limit: LEASE, visibilitySeconds: VISIBILITY_SECONDS, maxDeliveries: MAX_DELIVERIES });
  onLease?.(performance.now() - t);
  if (events.length === 0) return { leased: 0, acked: [] };
  const { results } = await ackLeases(db.prisma, tenantId, subscriptionId, events.map((e) => ({ id: e.id, lease_id: e.lease_id! })));
  return { leased: events.length, acked: results.filter((r) => r.status === "acknowledged").map((r) => r.id) };
}

runBench(async () => {
  const started = performance.now();
  const schema = await benchSchema();
  const { connectionString } = parseDatabaseUrl(schema.url);
  // One pool per role, as in their own processes: ingest (the worker), the consumer, the scheduler, and the bench's sampling.
  const ingestDb = connectPostgres(schema.url, { poolSize: 8 });
  const consumerDb = connectPostgres(schema.url, { poolSize: 2 });
  const schedulerDb = connectPostgres(schema.url, { poolSize: 2 });
  const monitorDb = connectPostgres(schema.url, { poolSize: 1 });
  // WAL positions on a connection of their own, so two readings around a call are as close as the call.
  const walClient = new Client({ connectionString, statement_timeout: 5000, query_timeout: 5250, connectionTimeoutMillis: 3000 });
  try {
    await walClient.connect();
    await applyMigrations(ingestDb.migrator, loadMigrations());
    // The migration's partitions are a day wide and empty here: dropped, so the step makes short ones from now on.
    for (const parent of ["deliveries", "events"] as const) {
      for (const p of await listPartitions(ingestDb.prisma, parent)) await ingestDb.migrator.query(`DROP TABLE "${p.name}"`);
    }
    await ensurePartitions(schedulerDb.prisma, new Date(), layout);
    const subscriptions = new Map<string, number>();
    for (const t of TENANTS) subscriptions.set(t, (await resolveSubscription(consumerDb.prisma, t, "default"))!);

    console.log(
      `bench:retention  ${MINUTES} min, ingest ${fmt(RATE)} events/s open loop (batches of ${BATCH}, one in ${KEYED_EVERY} keyed, ${HELD_EVENTS} held), ` +
        `consumer lease ${LEASE} + ack, partitions ${PARTITION_SECONDS} s (${AHEAD} ahead), ack/dead retention ${RETENTION_SECONDS} s, retention step every ${STEP_SECONDS} s`,
    );

    const ledger = new Ledger();
    const minutes: Minute[] = Array.from({ length: MINUTES }, () => ({ ingest: [], lease: [], dropped: 0, retiredRows: 0, droppedRows: false }));
    const windows = new Map<number, number[]>(); // ingest latencies by retention window (step index)
    const steps: Step[] = [];
    const errors = { ingest: 0, consumer: 0, step: 0 };
    const firstErrors: string[] = [];
    const failed = (kind: keyof typeof errors, err: unknown) => {
      errors[kind]++;
      if (firstErrors.length < 3) firstErrors.push(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
    };
    let lastWaiting = 0;
    const t0 = performance.now();
    const endAt = t0 + MINUTES * MINUTE_MS;
    const minuteOf = (at: number) => Math.min(MINUTES - 1, Math.floor((at - t0) / MINUTE_MS));
    let stopped = false;

    // Ingest, open loop: a batch every BATCH / RATE seconds on the clock; latency from the scheduled time.
    const periodMs = (BATCH * 1000) / RATE;
    const inflight = new Set<Promise<void>>();
    const send = async (at: number, k: number) => {
      const batch = batchOf(BATCH);
      if (k < HELD_EVENTS) batch[0] = { ...batch[0]!, tenant_id: HELD_TENANT, idempotency_key: null };
      try {
        const n = await insertEvents(ingestDb.prisma, batch);
        if (n !== batch.length) throw new Error(`insertEvents stored ${n} of ${batch.length} new events`);
        const ms = performance.now() - at;
        minutes[minuteOf(at)]!.ingest.push(ms);
        const w = Math.floor((at - t0) / (STEP_SECONDS * 1000));
        let list = windows.get(w);
        if (!list) windows.set(w, (list = []));
        list.push(ms);
        ledger.inserted(new Date(batch[0]!.received_at).getTime(), batch.map((e) => e.id));
      } catch (err) {
        failed("ingest", err);
      }
    };
    const ingest = (async () => {
      for (let k = 0; ; k++) {
        const at = t0 + k * periodMs;
        if (at >= endAt) break;
        const wait = at - performance.now();
        if (wait > 0) await sleep(wait);
        const p = send(at, k).finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all([...inflight]);
    })();

    // The consumer: every tenant in turn, lease then ack.
    const consumer = (async () => {
      while (!stopped) {
        let leased = 0;
        for (const t of TENANTS) {
          try {
            const r = await leaseAndAck(consumerDb, t, subscriptions.get(t)!, (ms) => {
              if (performance.now() < endAt) minutes[minuteOf(performance.now() - ms)]!.lease.push(ms);
            });
            leased += r.leased;
            for (const id of r.acked) ledger.acknowledged(id);
          } catch (err) {
            failed("consumer", err);
          }
        }
        if (leased < LEASE) await sleep(100);
      }
    })();

    // The retention step, every STEP_SECONDS on the clock (one at a time, as the job's runs are).
    const retention = (async () => {
      let before = { at: performance.now(), wal: await walPosition(walClient) };
      for (let k = 1; ; k++) {
        const at = t0 + k * STEP_SECONDS * 1000;
        if (at >= endAt) break;
        const wait = at - performance.now();
        if (wait > 0) await sleep(wait);
        try {
          // The traffic's WAL rate since the previous step, read before this step writes any.
          const wPre = await walPosition(walClient);
          const rate = Number(wPre - before.wal) / Math.max(1, performance.now() - before.at);
          const now = new Date();
          const parts = await listPartitions(schedulerDb.prisma, "events");
          await ensurePartitions(schedulerDb.prisma, now, layout);
          const w0 = await walPosition(walClient);
          const c0 = performance.now();
          const r = await retirePartitions(schedulerDb, { now, acknowledgedRetentionSeconds: RETENTION_SECONDS, deadRetentionSeconds: RETENTION_SECONDS });
          const c1 = performance.now();
          const w1 = await walPosition(walClient);
          let rows = 0;
          for (const suffix of r.retired) {
            const range = parts.find((p) => p.name === `events_${suffix}`);
            // Every event has one delivery (one subscription per tenant): twice the events are the rows.
            if (range) rows += 2 * ledger.eventsIn(range);
          }
          const wal = Number(w1 - w0);
          steps.push({ index: k, retired: r.retired.length, rows, waiting: r.waiting.length, retireMs: c1 - c0, wal, walNet: wal - rate * (c1 - c0) });
          lastWaiting = r.waiting.length;
          const m = minutes[minuteOf(at)]!;
          m.dropped += r.retired.length;
          m.retiredRows += rows;
          if (rows > 0) m.droppedRows = true;
          before = { at: performance.now(), wal: await walPosition(walClient) };
        } catch (err) {
          failed("step", err);
          console.error(`retention step ${k} failed:`, err);
          before = { at: performance.now(), wal: await walPosition(walClient).catch(() => before.wal) };
        }
      }
    })();

    // The minute's sample at its end, then its line.
    const sampler = (async () => {
      for (let m = 0; m < MINUTES; m++) {
        const wait = t0 + (m + 1) * MINUTE_MS - performance.now();
        if (wait > 0) await sleep(wait);
        const minute = minutes[m]!;
        try {
          const [s] = await monitorDb.session((q) =>
            q<{ bytes: string; events: string; deliveries: string }>(
              `SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('events') WHERE isleaf)
                    + (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('deliveries') WHERE isleaf)
                    + pg_total_relation_size('idempotency_keys') AS bytes,
                      (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM deliveries) AS deliveries`,
            ),
          );
          const partitions = (await listPartitions(monitorDb.prisma, "events")).length;
          minute.sample = { bytes: Number(s!.bytes), events: Number(s!.events), deliveries: Number(s!.deliveries), partitions, waiting: lastWaiting };
        } catch (err) {
          console.error(`minute ${m + 1} sample failed:`, err);
        }
        const s = minute.sample;
        console.log(
          `  minute ${String(m + 1).padStart(2)}: size ${s ? mb(s.bytes) : "?"}, rows events ${s ? fmt(s.events) : "?"} deliveries ${s ? fmt(s.deliveries) : "?"}, ` +
            `partitions ${s ? `${s.partitions} (${s.waiting} waiting)` : "?"}, ingest p99 ${fmt(percentile(minute.ingest, 99), 1)} ms (${fmt(minute.ingest.length)} sends), ` +
            `lease p99 ${fmt(percentile(minute.lease, 99), 1)} ms, drop ${minute.dropped > 0 ? `yes (${minute.dropped} pairs, ${fmt(minute.retiredRows)} rows)` : "no"}`,
        );
      }
    })();

    await ingest;
    stopped = true;
    await Promise.all([consumer, retention, sampler]);

    // Lost: every event inserted and never acknowledged must still have its rows.
    const pendingIds = [...ledger.pending];
    let lost = 0;
    for (let i = 0; i < pendingIds.length; i += 5000) {
      const [row] = await monitorDb.session((q) =>
        q<{ missing: number }>(
          `SELECT count(*)::int AS missing FROM unnest($1::text[]) AS p(id)
           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = p.id) OR NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = p.id)`,
          [pendingIds.slice(i, i + 5000)],
        ),
      );
      lost += row!.missing;
    }

    // Both paths like for like, once the load has stopped: two partitions' worth of acknowledged
    // rows before the oldest partition, X (older) and Y, as the run's were (same tenants' shape, one
    // in KEYED_EVERY keyed). X is deleted row by row by the expiry job's statement, Y retired by drop.
    // Each starts right after a CHECKPOINT, so every page it changes pays its full-page image, as
    // production's rows do when they go days after their last write.
    const oldest = (await listPartitions(ingestDb.prisma, "events"))[0]!;
    const widthMs = PARTITION_SECONDS * 1000;
    const oldRows = RATE * PARTITION_SECONDS;
    const oldTenants = TENANTS.map((t) => `old-${t}`);
    const yLedger = new Ledger();
    const fillOld = async (lower: number, into?: Ledger) => {
      for (let i = 0; i < oldRows; i += 100) {
        const n = Math.min(100, oldRows - i);
        const batch = batchOf(n, (j) => oldTenants[(i + j) % oldTenants.length]!).map((e, j) => ({
          ...e,
          received_at: new Date(lower + Math.floor(((i + j) * widthMs) / oldRows)).toISOString(),
        }));
        await insertEvents(ingestDb.prisma, batch);
        into?.inserted(lower, batch.map((e) => e.id));
      }
    };
    const yLower = oldest.lower.getTime() - widthMs;
    await fillOld(yLower - widthMs);
    await fillOld(yLower, yLedger);
    for (const t of oldTenants) {
      const sub = (await resolveSubscription(consumerDb.prisma, t, "default"))!;
      while ((await leaseAndAck(consumerDb, t, sub)).leased > 0);
    }
    await walClient.query("CHECKPOINT");
    const due = { cutoff: new Date(Date.now() + 1000), receivedBefore: new Date(yLower) };
    const d0 = await walPosition(walClient);
    const dt = performance.now();
    let deleted = 0;
    for (;;) {
      const b = await deleteExpiredBatch(ingestDb.prisma, "acknowledged", due, DELETE_BATCH);
      deleted += b.deliveries + b.events;
      if (b.deliveries < DELETE_BATCH) break;
    }
    const deleteMs = performance.now() - dt;
    const deleteWal = Number((await walPosition(walClient)) - d0);
    // The drop: every pair that is due with retention 0 (X's, now empty; Y's; any of the run's the
    // consumer has emptied since the last step), its rows counted from the ledgers.
    await walClient.query("CHECKPOINT");
    const partsBefore = await listPartitions(schedulerDb.prisma, "events");
    const l0 = await walPosition(walClient);
    const lt = performance.now();
    const last = await retirePartitions(schedulerDb, { now: new Date(), acknowledgedRetentionSeconds: 0, deadRetentionSeconds: 0 });
    const likeMs = performance.now() - lt;
    const likeWal = Number((await walPosition(walClient)) - l0);
    let likeRows = 0;
    for (const suffix of last.retired) {
      const range = partsBefore.find((p) => p.name === `events_${suffix}`);
      if (range) likeRows += 2 * (ledger.eventsIn(range) + yLedger.eventsIn(range));
    }

    // Summary.
    const warmEnd = minutes.findIndex((m) => m.droppedRows);
    const after = warmEnd < 0 ? [] : minutes.slice(warmEnd + 1).filter((m) => m.sample);
    const sizeRatio = after.length > 0 ? after.at(-1)!.sample!.bytes / after[0]!.sample!.bytes : NaN;
    const warmMs = warmEnd < 0 ? Infinity : (warmEnd + 1) * MINUTE_MS;
    const stepsAfter = steps.filter((s) => s.index * STEP_SECONDS * 1000 >= warmMs);
    const dropWindows = stepsAfter.filter((s) => s.retired > 0).map((s) => s.index);
    const quietWindows = stepsAfter.filter((s) => s.retired === 0).map((s) => s.index);
    const pool = (ix: number[]) => ix.flatMap((i) => windows.get(i) ?? []);
    const withDrop = pool(dropWindows);
    const without = pool(quietWindows);
    const p99Ratio = percentile(withDrop, 99) / percentile(without, 99);
    const drops = steps.filter((s) => s.retired > 0);
    const dropRows = drops.reduce((a, s) => a + s.rows, 0);
    const dropWal = drops.reduce((a, s) => a + s.wal, 0);
    const dropWalNet = drops.reduce((a, s) => a + s.walNet, 0);
    const quiet = steps.filter((s) => s.retired === 0);
    const quietNet = quiet.length > 0 ? quiet.reduce((a, s) => a + s.walNet, 0) / quiet.length : NaN;
    const quietMs = quiet.length > 0 ? quiet.reduce((a, s) => a + s.retireMs, 0) / quiet.length : NaN;
    const perRowDrop = dropRows > 0 ? dropWal / dropRows : NaN;
    const perRowDropNet = dropRows > 0 ? Math.max(0, dropWalNet) / dropRows : NaN;
    const perRowDelete = deleted > 0 ? deleteWal / deleted : NaN;
    const perRowLike = likeRows > 0 ? likeWal / likeRows : NaN;
    const walRatio = perRowDelete / perRowLike;
    const firstSize = after[0]?.sample?.bytes;
    const lastSize = after.at(-1)?.sample?.bytes;
    console.log(
      [
        `  warm-up: ${warmEnd < 0 ? "no partition holding rows was dropped" : `minutes 1-${warmEnd + 1} (the first drop of a partition holding rows in minute ${warmEnd + 1})`}`,
        `  size after warm-up: first ${firstSize === undefined ? "n/a" : mb(firstSize)}, last ${lastSize === undefined ? "n/a" : mb(lastSize)}: last/first ${r2(sizeRatio)}  (aim <= 1.10)`,
        `  ingest p99 after warm-up, windows of one retention step (${STEP_SECONDS} s): with a drop ${fmt(percentile(withDrop, 99), 2)} ms ` +
          `(${dropWindows.length} windows, ${fmt(withDrop.length)} sends), without ${fmt(percentile(without, 99), 2)} ms (${quietWindows.length} windows, ${fmt(without.length)} sends): ratio ${r2(p99Ratio)}  (aim <= 1.05)`,
        `  drops during the run: ${drops.reduce((a, s) => a + s.retired, 0)} partition pairs in ${drops.length} steps (retirePartitions ${fmt(drops.reduce((a, s) => a + s.retireMs, 0) / Math.max(1, drops.length), 0)} ms each on average), ` +
          `${fmt(dropRows)} rows; the server's WAL during them, the traffic beside them included, ${fmt(dropWal / 1024, 0)} KiB = ${fmt(perRowDrop, 2)} B per row ` +
          `(less the traffic's rate between steps: ${fmt(dropWalNet / 1024, 0)} KiB = ${fmt(perRowDropNet, 2)} B per row; the same estimate on the ${quiet.length} steps that dropped nothing: ${fmt(quietNet / 1024, 1)} KiB per step, ${fmt(quietMs, 0)} ms each)`,
        `  like for like, after the load, each after a CHECKPOINT:`,
        `    DELETE path: ${fmt(deleted)} rows (${fmt(oldRows)} events acknowledged, and their deliveries) by deleteExpiredBatch in ${fmt(deleteMs / 1000, 1)} s, WAL ${fmt(deleteWal / 1024, 0)} KiB = ${fmt(perRowDelete, 1)} B per row`,
        `    drop: ${last.retired.length} pairs, ${fmt(likeRows)} rows, ${fmt(last.keysDeleted)} keys, by retirePartitions in ${fmt(likeMs, 0)} ms, WAL ${fmt(likeWal / 1024, 0)} KiB = ${fmt(perRowLike, 2)} B per row`,
        `    DELETE / drop per row: ${r2(walRatio)}x  (aim >= 20; against the drops during the run, traffic included: ${r2(perRowDelete / perRowDrop)}x)`,
        `  pending at the end: ${fmt(pendingIds.length)} events never acknowledged (${HELD_EVENTS} of them held), missing ${lost}  (aim 0)`,
        `  errors: ingest ${errors.ingest}, consumer ${errors.consumer}, retention steps ${errors.step}${firstErrors.length > 0 ? ` (first: ${firstErrors.join("; ")})` : ""}; total ${fmt((performance.now() - started) / 1000, 1)} s`,
        `retention: size ${r2(sizeRatio)} p99 ratio ${r2(p99Ratio)} wal ${Number.isFinite(walRatio) ? Math.round(walRatio) : "n/a"}x less lost ${lost}`,
      ].join("\n"),
    );
  } finally {
    await walClient.end().catch(() => undefined);
    await Promise.allSettled([ingestDb.close(), consumerDb.close(), schedulerDb.close(), monitorDb.close()]);
    await schema.drop();
  }
});
