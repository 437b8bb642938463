import { setTimeout as sleep } from "node:timers/promises";
import { performance } from "node:perf_hooks";
import type { PrismaClient } from "../generated/prisma/client";
import { withTimeout } from "../deadline";
import type { ExpiryPacer, PacingSnapshot } from "./expiry-pacer";
import { countDue, deleteExpiredBatch, emitProbeMessage, explainDue, selectOne, type Due, type ExpiryKind } from "../store/expiry";

/** What the expiry job needs: only the database. */
export interface ExpireEventsDeps {
  readonly prisma: PrismaClient;
}

/** One expiry run's limits and retention windows. */
export interface ExpireEventsOptions {
  /** The run's notion of "now"; every cutoff is computed from it (never from the database clock). */
  readonly now: Date;
  /** Most rows one DELETE statement removes, so each statement holds few row locks and finishes fast. */
  readonly batchSize: number;
  /** Acknowledged events older than this after their acknowledgement are deleted, seconds. */
  readonly acknowledgedRetentionSeconds: number;
  /** Dead events older than this after their death are deleted, seconds. */
  readonly deadRetentionSeconds: number;
  /** When set, pending/delivered events received longer ago than this are deleted too, seconds. */
  readonly maxEventAgeSeconds?: number | undefined;
  /**
   * Width of the partitions, seconds (PARTITION_INTERVAL_SECONDS; default one day). Acknowledged and
   * dead deliveries expire with their partition (retention.ts); row by row, only those received
   * before now - max(acknowledgedRetentionSeconds, deadRetentionSeconds) - this are deleted: the
   * partitions that would have been dropped by now, had a live row not held them.
   */
  readonly partitionIntervalSeconds?: number;
  /**
   * Wall-clock budget of the run, ms. No new statement starts once it is spent, except that the
   * first pass always runs one statement per kind, so every kind makes progress on every run; the
   * rest is left for the next run.
   */
  readonly timeBudgetMs: number;
  /**
   * Pause after each full batch, ms (default 0). Spreads a large backlog over time so concurrent
   * ingest, lease and ack statements keep their latency; the cost is a lower deletion rate.
   */
  readonly pauseMs?: number;
  /**
   * Largest share of wall-clock time the run spends deleting (0–1, default 1). After each full
   * batch the run also rests `batch time × (1 / maxDuty − 1)`, so the load it adds stays the same
   * share of time on a fast machine and a slow one (a fixed pause lets a faster database delete
   * more often and weigh more on live traffic). Rests never run past `timeBudgetMs`.
   */
  readonly maxDuty?: number;
  /**
   * The feedback controller (expiry-pacer.ts). When set, it chooses each batch's size (batchSize is
   * then only the upper bound it was built with) and each rest, from the latency of the run's own
   * batches and a probe of the slowdown they cause; pauseMs and maxDuty are ignored. Keep one
   * instance per process so what it learnt carries over to the next run.
   */
  readonly pacer?: ExpiryPacer;
  /**
   * With a pacer: the time, ms from the start of this run, within which everything due now should be
   * deleted (it may span several runs). The run estimates the rows due from the planner's statistics
   * (EXPLAIN, no scan; doubled whenever the run gets past it, as statistics can be stale) and gives
   * the pacer the rate that needs, which becomes its floor.
   */
  readonly drainWithinMs?: number;
}

/** Why a run ended with expired rows left. */
export type IncompleteReason =
  /** The pacer spent the run backed off for live traffic (at or near its least duty). */
  | "backed-off"
  /** The budget ran out at full pace, or the deadline floor already asked for more than the largest duty. */
  | "budget";

/** Rows removed by one run, per kind, and whether the run got through everything that was due. */
export interface ExpireEventsResult {
  /** Acknowledged deliveries deleted. */
  readonly acknowledged: number;
  /** Dead deliveries deleted. */
  readonly dead: number;
  /** Pending/delivered deliveries deleted for exceeding maxEventAgeSeconds. */
  readonly stale: number;
  /** Events deleted because their last delivery was. */
  readonly events: number;
  /** DELETE statements that removed at least one row. */
  readonly batches: number;
  /** Wall-clock duration of the run, ms. */
  readonly durationMs: number;
  /** False when the time budget ran out before every kind came back with a short batch. */
  readonly complete: boolean;
  /** When !complete: why. */
  readonly incompleteReason?: IncompleteReason;
  /** The pacer's state after the run, with its decisions during this run (only with a pacer). */
  readonly pacing?: PacingSnapshot & { readonly runBackoffs: number; readonly runSpeedups: number };
}

/** The kinds of rows the job removes, in the order one pass visits them. */
export type { ExpiryKind };

/**
 * Deletes expired deliveries in batches of at most `batchSize` rows: acknowledged and dead ones
 * past their retention, and (only when maxEventAgeSeconds is set) pending/delivered ones of events
 * older than that; an event goes with its last delivery. Kinds take turns one batch at a time, so a large backlog of one kind cannot starve the
 * others: the first pass gives every kind one batch whatever the budget. Each kind stops at its first short batch. Returns what was removed.
 */
export async function expireEvents(deps: ExpireEventsDeps, opts: ExpireEventsOptions): Promise<ExpireEventsResult> {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError("batchSize must be a positive integer");
  const duty = opts.maxDuty ?? 1;
  if (!(duty > 0 && duty <= 1)) throw new RangeError("maxDuty must be in (0, 1]");
  const pacer = opts.pacer;
  const before = pacer?.snapshot();
  const started = performance.now();
  const cutoff = (seconds: number) => new Date(opts.now.getTime() - seconds * 1000);
  const heldBefore = cutoff(Math.max(opts.acknowledgedRetentionSeconds, opts.deadRetentionSeconds) + (opts.partitionIntervalSeconds ?? DEFAULT_PARTITION_SECONDS));
  const cutoffs = new Map<ExpiryKind, Due>([
    ["acknowledged", { cutoff: cutoff(opts.acknowledgedRetentionSeconds), receivedBefore: heldBefore }],
    ["dead", { cutoff: cutoff(opts.deadRetentionSeconds), receivedBefore: heldBefore }],
  ]);
  if (opts.maxEventAgeSeconds !== undefined) cutoffs.set("stale", { cutoff: cutoff(opts.maxEventAgeSeconds) });

  const deleted: Record<ExpiryKind, number> = { acknowledged: 0, dead: 0, stale: 0 };
  let events = 0;
  let batches = 0;
  let complete = true;
  let lastMsPerRow: number | undefined;
  let idleProbe: number | undefined;
  const due = [...cutoffs.keys()];
  // The deadline floor: rows due (planner estimate) over the time left to the drain deadline.
  let dueRows: number | undefined;
  if (pacer && opts.drainWithinMs !== undefined) {
    const estimates = await Promise.all(due.map((kind) => estimateDue(deps.prisma, kind, cutoffs.get(kind)!)));
    dueRows = estimates.reduce<number>((a, e) => a + (e ?? 0), 0);
  }
  const deadline = started + (opts.drainWithinMs ?? 0);
  const aimAt = started + DEADLINE_AIM * (opts.drainWithinMs ?? 0);
  const updateFloor = () => {
    if (!pacer || dueRows === undefined) return;
    const done = deleted.acknowledged + deleted.dead + deleted.stale;
    // Statistics can be stale (no ANALYZE since the backlog grew; PGlite has no autovacuum): while
    // batches still come back full past the estimate, assume at least as much again is left.
    if (done >= dueRows) dueRows = 2 * Math.max(done, 1);
    const left = dueRows - done;
    // Plan to be done by a fixed point short of the deadline (DEADLINE_AIM of the way): the probes,
    // the estimate and the gaps between runs take time the duty does not see. A target that moved
    // with the clock (a share of the time left) would be approached forever and met only at the
    // deadline. Past that point, a fifth of the time left.
    const now = performance.now();
    pacer.setRequiredRate(left / Math.max(1, aimAt - now, (1 - DEADLINE_AIM) * (deadline - now)));
  };
  updateFloor();
  pass: for (let first = true; due.length > 0; first = false) {
    for (const kind of [...due]) {
      if (!first && performance.now() - started >= opts.timeBudgetMs) {
        complete = false;
        break pass;
      }
      const limit = pacer ? Math.min(pacer.batchSize, opts.batchSize) : opts.batchSize;
      const batchStarted = performance.now();
      let n: number;
      let busyProbe: number | undefined;
      if (pacer) {
        if (idleProbe === undefined) idleProbe = await probe(deps.prisma);
        // Probe once while the DELETE runs, about halfway through by the last batch's pace.
        // A probe is skipped if the DELETE is already over: it would measure nothing of it.
        let settled = false;
        const deletion = deleteExpiredBatch(deps.prisma, kind, cutoffs.get(kind)!, limit).then((b) => ((events += b.events), b.deliveries));
        const expected = lastMsPerRow === undefined ? 5 : lastMsPerRow * limit;
        const probing = (async () => {
          await sleep(Math.max(1, expected * 0.4));
          return settled ? undefined : probe(deps.prisma);
        })();
        try {
          n = await deletion;
        } finally {
          settled = true;
        }
        busyProbe = await probing;
      } else {
        const batch = await deleteExpiredBatch(deps.prisma, kind, cutoffs.get(kind)!, limit);
        n = batch.deliveries;
        events += batch.events;
      }
      if (n > 0) batches++;
      deleted[kind] += n;
      if (n < limit) due.splice(due.indexOf(kind), 1);
      else {
        const now = performance.now();
        const batchMs = now - batchStarted;
        let rest: number;
        if (pacer) {
          lastMsPerRow = batchMs / n;
          pacer.observe({ rows: n, ms: batchMs, probeBusyMs: busyProbe, probeIdleMs: idleProbe });
          updateFloor();
          rest = pacer.restAfter(batchMs);
        } else {
          rest = Math.max(opts.pauseMs ?? 0, batchMs * (1 / duty - 1));
        }
        // Rest, but never past the run's budget: the next run picks up where this one stopped.
        rest = Math.min(rest, opts.timeBudgetMs - (now - started));
        if (rest > 0) await sleep(rest);
        // The idle probe for the next batch: at the end of the rest, when expiry weighs least.
        idleProbe = pacer ? await probe(deps.prisma) : undefined;
      }
    }
  }
  const result: ExpireEventsResult = { ...deleted, events, batches, durationMs: Math.round(performance.now() - started), complete };
  if (!pacer || !before) return complete ? result : { ...result, incompleteReason: "budget" };
  const after = pacer.snapshot();
  const pacing = { ...after, runBackoffs: after.backoffs - before.backoffs, runSpeedups: after.speedups - before.speedups };
  if (opts.drainWithinMs !== undefined) pacer.setRequiredRate(undefined); // the floor was this run's
  if (complete) return { ...result, pacing };
  // Backed off: the run ended below full pace because of what it observed. Otherwise the backlog is
  // simply larger than one run at the largest pace the bounds allow.
  const backedOff = !after.deadlineAtRisk && (pacing.runBackoffs > 0 || after.duty < pacer.bounds.maxDuty);
  return { ...result, pacing, incompleteReason: backedOff ? "backed-off" : "budget" };
}

/** PARTITION_INTERVAL_SECONDS's default. */
const DEFAULT_PARTITION_SECONDS = 86_400;

/** Share of the time left to the drain deadline the floor plans to use. */
const DEADLINE_AIM = 0.8;

/** Most due rows a run counts exactly before it falls back to the planner's estimate. */
const COUNT_CAP = 2_000_000;

/**
 * The rows one kind has due at the start of a run, for the deadline floor: counted (an index-only
 * scan of the kind's partial index, at most COUNT_CAP rows, within the probe deadline), else the
 * planner's estimate (EXPLAIN on the same predicate; statistics only). The count comes first
 * because the estimate goes stale during a drain: deleting does not shrink the table, so until
 * the next (auto)vacuum the planner still counts the rows already deleted, and the floor would
 * ask for a pace the backlog does not need. Undefined when both fail: the run has no floor.
 */
async function estimateDue(prisma: PrismaClient, kind: ExpiryKind, cutoff: Due): Promise<number | undefined> {
  const n = await withinProbeDeadline(countDue(prisma, kind, cutoff, COUNT_CAP));
  if (typeof n === "number" && n < COUNT_CAP) return n;
  const raw = await withinProbeDeadline(explainDue(prisma, kind, cutoff));
  try {
    const plan = (typeof raw === "string" ? JSON.parse(raw) : raw) as { Plan?: { "Plan Rows"?: number } }[] | undefined;
    const planned = plan?.[0]?.Plan?.["Plan Rows"];
    if (typeof planned === "number" && Number.isFinite(planned)) return Math.max(planned, n ?? 0);
  } catch {
    // no usable plan
  }
  return n;
}

/** The query's result, or undefined when it fails or passes the probe deadline. */
function withinProbeDeadline<T>(query: Promise<T>): Promise<T | undefined> {
  query.catch(() => undefined); // settled late after the deadline: nobody waits for it
  return withTimeout(query, PROBE_DEADLINE_MS, "estimate").catch(() => undefined);
}

/** Longest a probe may take; beyond it the probe counts as this slow (heavy interference). */
const PROBE_DEADLINE_MS = 1000;

/** Clients whose database refused the committing probe: they get the read-only one instead. */
const readOnlyProbe = new WeakSet<PrismaClient>();

/**
 * Times a small statement on another pooled connection: what a concurrent short write waits for
 * right now. The probe is the smallest committing write there is, a transactional logical-decoding
 * message (`pg_logical_emit_message(true, 'triggers-expiry-probe', '')`: one WAL record, no table),
 * so like an INSERT it waits for its commit to be flushed, behind whatever WAL expiry just wrote.
 * Where that function is refused (PGlite, a locked-down role), `SELECT 1` stands in: CPU and round
 * trip only. Never throws: a probe that fails or passes its deadline reads as slow, which makes the
 * pacer back off, the safe direction.
 */
async function probe(prisma: PrismaClient): Promise<number> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("probe deadline")), PROBE_DEADLINE_MS);
  });
  try {
    if (readOnlyProbe.has(prisma)) {
      await Promise.race([selectOne(prisma), deadline]);
    } else {
      const write = emitProbeMessage(prisma);
      const failed = Symbol("failed");
      const r = await Promise.race([write.catch(() => failed), deadline]);
      if (r === failed) {
        readOnlyProbe.add(prisma);
        return probe(prisma);
      }
    }
    return performance.now() - t0;
  } catch {
    return PROBE_DEADLINE_MS;
  } finally {
    clearTimeout(timer);
  }
}
