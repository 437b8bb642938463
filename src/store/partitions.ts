import type { PrismaClient } from "../generated/prisma/client";
import { queryRows, sql } from "./sql";
import type { Queryable } from "./sql";

/**
 * Partitions of the time-partitioned history (events and deliveries, PARTITION BY RANGE
 * (received_at); docs/scheduler.md#retention). Every partition is created by the database function
 * triggers_ensure_partitions (migration 20261207000100_partitioned_history), the one place that
 * knows the bounds and names: the migration, the worker at start, the scheduler's expiry job and the
 * insert that met a row outside every partition all call it. It runs with its owner's rights, so
 * the least-privilege app role needs no DDL right, and it serialises concurrent callers itself.
 */

/** How wide partitions are and how many are kept created beyond the current one (config PARTITION_*). */
export interface PartitionLayout {
  readonly intervalSeconds: number;
  readonly ahead: number;
}

/** One partition pair's range: [lower, upper). */
export interface PartitionRange {
  readonly name: string;
  readonly lower: Date;
  readonly upper: Date;
  readonly detachPending: boolean;
}

/**
 * Ensures partitions from one interval before `now` to `ahead` intervals after it (the current one
 * and `ahead` more). New ones start at the previous highest upper bound, so a change of width never
 * overlaps. Answers how many partition pairs it created.
 */
export async function ensurePartitions(prisma: Queryable, now: Date, layout: PartitionLayout): Promise<number> {
  const width = layout.intervalSeconds * 1000;
  const from = new Date(now.getTime() - width);
  // +1 ms: the range is half-open, and the instant `ahead` intervals from now must be covered too.
  const to = new Date(now.getTime() + layout.ahead * width + 1);
  const rows = await queryRows(
    prisma,
    "ensurePartitions",
    sql`SELECT triggers_ensure_partitions(${from}::timestamptz, ${to}::timestamptz, ${layout.intervalSeconds}::int) AS created`,
    { created: "int" },
  );
  return rows[0]?.created ?? 0;
}

/**
 * Ensures a partition covering each of these instants (rows an insert found no partition for: a
 * message may sit in SQS for days, so old instants too). A missing one is created at the width of
 * the newest partition; only the slots containing the instants are created. Answers how many.
 */
export async function ensurePartitionsCovering(prisma: Queryable, instants: readonly Date[]): Promise<number> {
  const distinct = [...new Set(instants.map((d) => d.getTime()))].map((t) => new Date(t).toISOString());
  if (distinct.length === 0) return 0;
  const rows = await queryRows(
    prisma,
    "ensurePartitionsCovering",
    sql`SELECT coalesce(sum(triggers_ensure_partitions(t, t + interval '1 millisecond', NULL)), 0)::int AS created
        FROM unnest(${distinct}::timestamptz[]) AS t`,
    { created: "int" },
  );
  return rows[0]?.created ?? 0;
}

/** The partitions of events, oldest first (deliveries has the same bounds under the same suffix). */
export async function listPartitions(prisma: PrismaClient | Queryable, parent: "events" | "deliveries" = "events"): Promise<PartitionRange[]> {
  const rows = await queryRows(
    prisma,
    "listPartitions",
    sql`SELECT name, lower, upper, detach_pending FROM triggers_partition_bounds(${parent}) ORDER BY lower`,
    { name: "string", lower: "date", upper: "date", detach_pending: "boolean" },
  );
  return rows.map((r) => ({ name: r.name, lower: r.lower, upper: r.upper, detachPending: r.detach_pending }));
}

/** SQLSTATE 23514 "no partition of relation ... found for row": a row outside every partition. */
export function isNoPartitionError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur && typeof cur === "object" && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as { message?: unknown; meta?: { message?: unknown; driverAdapterError?: unknown }; cause?: unknown };
    for (const m of [e.message, e.meta?.message]) {
      if (typeof m === "string" && /no partition of relation .* found for row/i.test(m)) return true;
    }
    cur = e.cause ?? e.meta?.driverAdapterError;
  }
  return false;
}
