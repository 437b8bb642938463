import type { Database, SessionQuery } from "./database";
import { listPartitions, type PartitionRange } from "./partitions";
import type { PrismaClient } from "../generated/prisma/client";

/**
 * Retention by drop (docs/scheduler.md#retention): a partition pair (events_pX, deliveries_pX) is
 * retired once its upper bound is one partition width in the past and nothing in deliveries_pX is
 * live, that is none of:
 *   - a pending or delivered (leased) delivery, unless MAX_EVENT_AGE_SECONDS is set and the upper
 *     bound is older than it (then they expire with the partition, as the "stale" kind does);
 *   - an acknowledged delivery acknowledged within ACK_RETENTION_SECONDS;
 *   - a dead delivery dead within DEAD_RETENTION_SECONDS.
 * Each check is an existence probe on the partition's partial index of its status. Retiring:
 * detach deliveries_pX then events_pX (CONCURRENTLY when this session owns the tables; else the
 * migration's triggers_detach_partition, a plain DETACH under a short lock_timeout), check the
 * detached deliveries table again (a redrive or a replay may have revived a row between the check
 * and the detach: then both are attached back and the pair waits), delete the idempotency keys of
 * their range in bounded batches, and drop both. A pair past its time held by a live row
 * waits: `waiting` and its oldest upper bound feed the gauges triggers_partitions_waiting and
 * triggers_partitions_waiting_oldest_seconds.
 *
 * Concurrent runs (several scheduler processes) take turns on a session-level advisory lock; a
 * run that finds it held does nothing (`skipped`). A pair an interrupted run left detach-pending is
 * finalized by the next run, and a detached table it left behind is checked, then attached back
 * or dropped.
 */

export interface RetireOptions {
  /** The run's "now"; every cutoff is computed from it. */
  readonly now: Date;
  readonly acknowledgedRetentionSeconds: number;
  readonly deadRetentionSeconds: number;
  readonly maxEventAgeSeconds?: number | undefined;
  /** Idempotency keys deleted per statement (default 5000). */
  readonly keyBatchSize?: number;
  /** Most pairs retired per run (default 50): a long backlog of partitions goes over several runs. */
  readonly maxRetired?: number;
}

export interface RetireResult {
  /** Suffixes of the pairs dropped by this run. */
  readonly retired: string[];
  /** Pairs past their time held by a live row, oldest first. */
  readonly waiting: PartitionRange[];
  /** Pairs detached, found live again, and attached back (counted in waiting too). */
  readonly reattached: string[];
  /** Idempotency keys deleted with the dropped pairs. */
  readonly keysDeleted: number;
  /** Another run held the lock: this one did nothing. */
  readonly skipped: boolean;
}

/**
 * Deadline of a concurrent detach and of its FINALIZE, ms: they wait, by design, for the
 * transactions that use the table to end. Past it the partition stays DETACH PENDING and the next
 * run finalizes it.
 */
const DETACH_DEADLINE_MS = 60_000;

/** The session-level advisory lock of retirement runs ("retire" in ASCII). */
const RETIRE_LOCK_KEY = 0x726574697265;
const SUFFIX = /^p\d{8}t\d{6}$/;
/** Runs of one process on an embedded database (one session for all: the advisory lock is re-entrant there). */
const inProcess = new WeakMap<object, Promise<unknown>>();

/** Retires the partition pairs that are due; see the module comment. */
export async function retirePartitions(db: Pick<Database, "session" | "prisma" | "kind">, opts: RetireOptions): Promise<RetireResult> {
  if (db.kind === "pglite") {
    const prior = inProcess.get(db);
    if (prior) return { retired: [], waiting: [], reattached: [], keysDeleted: 0, skipped: true };
    const run = db.session((q) => retireOnSession(db.prisma, q, opts));
    inProcess.set(db, run);
    try {
      return await run;
    } finally {
      inProcess.delete(db);
    }
  }
  return db.session(async (q) => {
    const [lock] = await q<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${RETIRE_LOCK_KEY}) AS ok`);
    if (!lock?.ok) return { retired: [], waiting: [], reattached: [], keysDeleted: 0, skipped: true };
    try {
      return await retireOnSession(db.prisma, q, opts);
    } finally {
      await q(`SELECT pg_advisory_unlock(${RETIRE_LOCK_KEY})`);
    }
  });
}

async function retireOnSession(prisma: PrismaClient, q: SessionQuery, opts: RetireOptions): Promise<RetireResult> {
  const now = opts.now.getTime();
  const ackCutoff = new Date(now - opts.acknowledgedRetentionSeconds * 1000);
  const deadCutoff = new Date(now - opts.deadRetentionSeconds * 1000);
  const staleBefore = opts.maxEventAgeSeconds === undefined ? undefined : new Date(now - opts.maxEventAgeSeconds * 1000);
  const keyBatch = opts.keyBatchSize ?? 5000;
  const [own] = await q<{ owner: boolean }>(`SELECT pg_has_role(current_user, relowner, 'USAGE') AS owner FROM pg_class WHERE oid = 'deliveries'::regclass`);
  const owner = own?.owner === true;
  const retired: string[] = [];
  const reattached: string[] = [];
  const waiting: PartitionRange[] = [];
  let keysDeleted = 0;

  // An interrupted run's leftovers: detach-pending partitions are finalized, then every detached
  // table of a pair is checked like a freshly detached one.
  for (const parent of ["deliveries", "events"] as const) {
    for (const p of await listPartitions(prisma, parent)) {
      if (p.detachPending) await q(`ALTER TABLE ${parent} DETACH PARTITION ${p.name} FINALIZE`, [], { timeoutMs: DETACH_DEADLINE_MS });
    }
  }
  const leftovers = await q<{ suffix: string }>(
    `SELECT DISTINCT substring(relname FROM '_(p[0-9]{8}t[0-9]{6})$') AS suffix FROM pg_class
     WHERE relnamespace = to_regnamespace(current_schema()) AND relkind = 'r' AND NOT relispartition AND relname ~ '^(events|deliveries)_p[0-9]{8}t[0-9]{6}$'`,
  );
  for (const { suffix } of leftovers) {
    const bounds = boundsOfSuffix(suffix, await listPartitions(prisma, "events"));
    const outcome = await settleDetached(q, suffix, bounds, { ackCutoff, deadCutoff, staleBefore }, keyBatch, owner);
    if (outcome.dropped) {
      retired.push(suffix);
      keysDeleted += outcome.keys;
    } else reattached.push(suffix);
  }

  // Keys of ranges no partition covers any more (a run that stopped between a drop and its keys).
  const parts = await listPartitions(prisma, "deliveries");
  if (parts.length > 0) keysDeleted += await deleteKeys(q, new Date(0), parts[0]!.lower, keyBatch);

  for (const p of parts) {
    // Past its time: one more width after its upper bound, so rows that arrive late (a message that
    // waited in the queue) still find it, and the partitions ensured from one interval back are
    // never retired and made again run after run.
    if (p.upper.getTime() + (p.upper.getTime() - p.lower.getTime()) > now) continue;
    if (p.detachPending) continue;
    const suffix = p.name.replace(/^deliveries_/, "");
    if (!SUFFIX.test(suffix)) continue;
    const live = { ackCutoff, deadCutoff, staleBefore: staleBefore && p.upper <= staleBefore ? staleBefore : undefined };
    if (await holdsLive(q, `deliveries WHERE received_at >= $1::timestamptz AND received_at < $2::timestamptz AND`, [p.lower.toISOString(), p.upper.toISOString()], live)) {
      waiting.push(p);
      continue;
    }
    if (retired.length >= (opts.maxRetired ?? 50)) break;
    await detachPair(q, suffix, owner, false);
    const outcome = await settleDetached(q, suffix, p, live, keyBatch, owner);
    if (outcome.dropped) {
      retired.push(suffix);
      keysDeleted += outcome.keys;
    } else {
      reattached.push(suffix);
      waiting.push(p);
    }
  }
  return { retired, waiting, reattached, keysDeleted, skipped: false };
}

/**
 * Detaches deliveries_<suffix>, then events_<suffix>: CONCURRENTLY (sent alone) when this session
 * owns the tables, else through triggers_detach_partition. With `onlyAttached`, a table that is no
 * longer a partition is left as it is.
 */
async function detachPair(q: SessionQuery, suffix: string, owner: boolean, onlyAttached: boolean): Promise<void> {
  for (const parent of ["deliveries", "events"] as const) {
    if (onlyAttached) {
      const [row] = await q<{ attached: boolean | null }>(`SELECT (SELECT relispartition FROM pg_class WHERE oid = to_regclass($1)) AS attached`, [`${parent}_${suffix}`]);
      if (row?.attached !== true) continue;
    }
    if (owner) await q(`ALTER TABLE ${parent} DETACH PARTITION ${parent}_${suffix} CONCURRENTLY`, [], { timeoutMs: DETACH_DEADLINE_MS });
    else await q(`SELECT triggers_detach_partition($1, $2)`, [parent, suffix]);
  }
}

interface LiveCutoffs {
  readonly ackCutoff: Date;
  readonly deadCutoff: Date;
  /** Set when pending and delivered rows of this pair expire with it (MAX_EVENT_AGE_SECONDS). */
  readonly staleBefore: Date | undefined;
}

/**
 * Whether rows `from` (a table and the start of a WHERE, ending in AND) hold a live delivery: one
 * existence probe per status, each on that status's partial index. $1, $2 are the caller's.
 */
async function holdsLive(q: SessionQuery, from: string, params: readonly unknown[], c: LiveCutoffs): Promise<boolean> {
  const n = params.length;
  const pending = c.staleBefore === undefined ? `EXISTS (SELECT 1 FROM ${from} status IN ('pending', 'delivered')) OR ` : "";
  const [row] = await q<{ live: boolean }>(
    `SELECT ${pending}EXISTS (SELECT 1 FROM ${from} status = 'acknowledged' AND acknowledged_at >= $${n + 1}::timestamptz)
        OR EXISTS (SELECT 1 FROM ${from} status = 'dead' AND dead_at >= $${n + 2}::timestamptz) AS live`,
    [...params, c.ackCutoff.toISOString(), c.deadCutoff.toISOString()],
  );
  return row?.live === true;
}

/**
 * A detached pair: its deliveries checked again; live (revived between the check and the detach)
 * → attached back; else both dropped and their keys deleted.
 */
async function settleDetached(
  q: SessionQuery,
  suffix: string,
  bounds: { lower: Date; upper: Date } | undefined,
  live: LiveCutoffs,
  keyBatch: number,
  owner: boolean,
): Promise<{ dropped: boolean; keys: number }> {
  const [exists] = await q<{ t: string | null }>(`SELECT to_regclass('deliveries_${suffix}')::text AS t`);
  const revived = exists?.t ? await holdsLive(q, `deliveries_${suffix} WHERE`, [], live) : false;
  if (revived) {
    if (!bounds) throw new Error(`detached partition pair ${suffix} holds live deliveries but its bounds are unknown`);
    await q(`SELECT triggers_attach_partitions($1, $2::timestamptz, $3::timestamptz)`, [suffix, bounds.lower.toISOString(), bounds.upper.toISOString()]);
    return { dropped: false, keys: 0 };
  }
  // An interrupted run may have detached one of the pair only: the other goes the same way first.
  await detachPair(q, suffix, owner, true);
  // Keys first: from the detach on, the pair's events are out of reach, so their keys must not
  // outlive them (a resend would be taken for a replay of an event that is gone); a drop that fails
  // after this is finished by the next run (the pair is a leftover, its rows not live).
  const range = bounds ?? (await detachedRange(q, suffix));
  const keys = range ? await deleteKeys(q, range.lower, range.upper, keyBatch) : 0;
  await q(`SELECT triggers_drop_detached_partitions($1)`, [suffix]);
  return { dropped: true, keys };
}

/** The range of a detached pair, from its rows' check constraint-free content: its name's lower bound to the next partition. */
async function detachedRange(q: SessionQuery, suffix: string): Promise<{ lower: Date; upper: Date } | undefined> {
  const [row] = await q<{ lower: Date | null; upper: Date | null }>(
    `SELECT min(received_at) AS lower, max(received_at) + interval '1 millisecond' AS upper FROM (
       SELECT received_at FROM events_${suffix} UNION ALL SELECT received_at FROM deliveries_${suffix}) r`,
  ).catch(() => [] as Array<{ lower: Date | null; upper: Date | null }>);
  return row?.lower && row.upper ? { lower: row.lower, upper: row.upper } : undefined;
}

/**
 * A leftover detached pair's bounds (an interrupted run did not record them): its name's lower
 * bound, and one width of the newest attached partition (the width ensurePartitions makes), cut
 * at the next attached partition.
 */
function boundsOfSuffix(suffix: string, attached: readonly PartitionRange[]): { lower: Date; upper: Date } | undefined {
  const m = /^p(\d{4})(\d{2})(\d{2})t(\d{2})(\d{2})(\d{2})$/.exec(suffix);
  if (!m) return undefined;
  const lower = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  const newest = attached.at(-1);
  const width = newest ? newest.upper.getTime() - newest.lower.getTime() : 86_400_000;
  const next = attached.find((p) => p.lower > lower);
  return { lower, upper: new Date(Math.min(lower.getTime() + width, next ? next.lower.getTime() : Infinity)) };
}

/** Deletes the idempotency keys received in [lower, upper), at most `batch` per statement. */
async function deleteKeys(q: SessionQuery, lower: Date, upper: Date, batch: number): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await q<{ n: number }>(
      `WITH gone AS (
         DELETE FROM idempotency_keys WHERE (tenant_id, idempotency_key) IN (
           SELECT tenant_id, idempotency_key FROM idempotency_keys WHERE received_at >= $1::timestamptz AND received_at < $2::timestamptz LIMIT $3::int)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [lower.toISOString(), upper.toISOString(), batch],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < batch) return total;
  }
}
