import { performance } from "node:perf_hooks";
import type { PrismaClient } from "../generated/prisma/client";

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
}

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
}

/** The kinds of rows the job removes, in the order one pass visits them. */
export type ExpiryKind = "acknowledged" | "dead" | "stale";

/**
 * One bounded DELETE of deliveries per kind, and of the events whose last delivery that was, in
 * one statement. The status literal in each statement matches the predicate of a partial index
 * (deliveries_acknowledged_at_idx, deliveries_dead_at_idx, deliveries_deliverable_idx), so the
 * planner reads only rows of that status in index order and stops after `limit` of them; it never
 * scans or locks the whole table. SKIP LOCKED steps over rows an ack or a lease holds right now
 * (they are picked up by a later run) instead of waiting on them, and lets two concurrent runs
 * split the work instead of blocking each other.
 *
 * An event is deleted when none of its deliveries is left: `orphans` looks (by the primary key of
 * deliveries, which leads with event_id) for a delivery of the event other than the ones this
 * statement deletes. Deleting the event would cascade to its deliveries; there are none left.
 */
async function deleteBatch(prisma: PrismaClient, kind: ExpiryKind, cutoff: Date, limit: number): Promise<{ deliveries: number; events: number }> {
  let select: string;
  switch (kind) {
    case "acknowledged":
      select = `SELECT event_id, subscription_id FROM deliveries
          WHERE status = 'acknowledged' AND acknowledged_at < $1::timestamptz
          ORDER BY acknowledged_at LIMIT $2::int
          FOR UPDATE SKIP LOCKED`;
      break;
    case "dead":
      select = `SELECT event_id, subscription_id FROM deliveries
          WHERE status = 'dead' AND dead_at < $1::timestamptz
          ORDER BY dead_at LIMIT $2::int
          FOR UPDATE SKIP LOCKED`;
      break;
    case "stale":
      // No ORDER BY: the deliverable index leads with tenant_id, so ordering by received_at would
      // sort every deliverable row; without it the scan stops at the first `limit` matches.
      select = `SELECT event_id, subscription_id FROM deliveries
          WHERE status IN ('pending', 'delivered') AND received_at < $1::timestamptz
          LIMIT $2::int
          FOR UPDATE SKIP LOCKED`;
      break;
  }
  const rows = await prisma.$queryRawUnsafe<Array<{ deliveries: number; events: number }>>(
    `WITH gone AS (
       DELETE FROM deliveries WHERE (event_id, subscription_id) IN (${select})
       RETURNING event_id, subscription_id
     ),
     orphans AS (
       DELETE FROM events e WHERE e.id IN (SELECT event_id FROM gone)
         AND NOT EXISTS (
           SELECT 1 FROM deliveries o
           WHERE o.event_id = e.id AND o.subscription_id NOT IN (SELECT g.subscription_id FROM gone g WHERE g.event_id = e.id))
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM gone)::int AS deliveries, (SELECT count(*) FROM orphans)::int AS events`,
    cutoff,
    limit,
  );
  return { deliveries: Number(rows[0]?.deliveries ?? 0), events: Number(rows[0]?.events ?? 0) };
}

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
  const started = performance.now();
  const cutoff = (seconds: number) => new Date(opts.now.getTime() - seconds * 1000);
  const cutoffs = new Map<ExpiryKind, Date>([
    ["acknowledged", cutoff(opts.acknowledgedRetentionSeconds)],
    ["dead", cutoff(opts.deadRetentionSeconds)],
  ]);
  if (opts.maxEventAgeSeconds !== undefined) cutoffs.set("stale", cutoff(opts.maxEventAgeSeconds));

  const deleted: Record<ExpiryKind, number> = { acknowledged: 0, dead: 0, stale: 0 };
  let events = 0;
  let batches = 0;
  let complete = true;
  const due = [...cutoffs.keys()];
  pass: for (let first = true; due.length > 0; first = false) {
    for (const kind of [...due]) {
      if (!first && performance.now() - started >= opts.timeBudgetMs) {
        complete = false;
        break pass;
      }
      const batchStarted = performance.now();
      const batch = await deleteBatch(deps.prisma, kind, cutoffs.get(kind)!, opts.batchSize);
      const n = batch.deliveries;
      events += batch.events;
      if (n > 0) batches++;
      deleted[kind] += n;
      if (n < opts.batchSize) due.splice(due.indexOf(kind), 1);
      else {
        const now = performance.now();
        // Rest, but never past the run's budget: the next run picks up where this one stopped.
        const rest = Math.min(Math.max(opts.pauseMs ?? 0, (now - batchStarted) * (1 / duty - 1)), opts.timeBudgetMs - (now - started));
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
    }
  }
  return { ...deleted, events, batches, durationMs: Math.round(performance.now() - started), complete };
}
