import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, join, queryRows, sql, type Sql } from "../sql";
import { EVENT_STATUSES, STATUS_LITERAL, type EventStatus } from "./peek-events";

/** Counts stop here: a backlog page never counts more rows than this per status (the answer says "at least"). */
export const STATS_COUNT_LIMIT = 10_000;
/** The chart's window and bucket: the last hour in 5-minute buckets. */
export const STATS_WINDOW_SECONDS = 3600;
export const STATS_BUCKET_SECONDS = 300;
/** Rows per status the chart reads at most (newest first); older buckets are then marked incomplete. */
export const STATS_CHART_SCAN_LIMIT = 20_000;

export interface BoundedCount {
  readonly count: number;
  /** False when the count stopped at STATS_COUNT_LIMIT: the true number is at least `count`. */
  readonly exact: boolean;
}

export interface SubscriptionStats {
  readonly counts: Readonly<Record<EventStatus, BoundedCount>>;
  readonly oldestPendingAt: Date | null;
  readonly now: Date;
  /** Oldest first. `received`: deliveries received in the bucket; `backlog`: those of them still pending or leased. */
  readonly buckets: ReadonlyArray<{ start: Date; received: number; backlog: number; complete: boolean }>;
}

/** Each status's count, named after it. */
const COUNT_ALIAS = Object.fromEntries(EVENT_STATUSES.map((s) => [s, fragment(`"${s}"`)])) as Record<EventStatus, Sql>;
const COUNT_ROW = { pending: "int", delivered: "int", acknowledged: "int", dead: "int", oldest: "date?", now: "date" } as const;
const CHART_ROW = { bucket: "int", status: "string", n: "int", earliest: "date" } as const;
const BUCKET_SECONDS = fragment(String(STATS_BUCKET_SECONDS));

/**
 * A subscription's backlog without a COUNT over the table: each status is counted through
 * deliveries_tenant_status_received_idx up to STATS_COUNT_LIMIT rows; the oldest pending event is
 * the first row of that index; the chart groups at most STATS_CHART_SCAN_LIMIT newest rows per
 * status of the last hour. Three statements, each bounded, each scoped to the tenant.
 */
export async function subscriptionStats(prisma: PrismaClient, tenantId: string, subscriptionId: number): Promise<SubscriptionStats> {
  const countLimit = STATS_COUNT_LIMIT + 1;
  const countSql = EVENT_STATUSES.map(
    (s) =>
      sql`(SELECT count(*)::int FROM (SELECT 1 FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND status = ${STATUS_LITERAL[s]} LIMIT ${countLimit}) x) AS ${COUNT_ALIAS[s]}`,
  );
  const [countRow] = await queryRows(
    prisma,
    "subscriptionStatsCounts",
    sql`SELECT ${join(countSql, ", ")},
       (SELECT received_at FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND status = 'pending' ORDER BY received_at, event_id LIMIT 1) AS oldest,
       now() AS now`,
    COUNT_ROW,
  );
  const counts = Object.fromEntries(
    EVENT_STATUSES.map((s) => {
      const n = countRow?.[s] ?? 0;
      return [s, { count: Math.min(n, STATS_COUNT_LIMIT), exact: n <= STATS_COUNT_LIMIT }];
    }),
  ) as Record<EventStatus, BoundedCount>;
  const now = countRow?.now ?? new Date();
  const start = new Date(Math.floor((now.getTime() - STATS_WINDOW_SECONDS * 1000) / (STATS_BUCKET_SECONDS * 1000) + 1) * STATS_BUCKET_SECONDS * 1000);
  const chartSql = EVENT_STATUSES.map(
    (s) => sql`(SELECT ${STATUS_LITERAL[s]} AS status, received_at FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND status = ${STATUS_LITERAL[s]} AND received_at >= ${start}::timestamptz
       ORDER BY received_at DESC, event_id DESC LIMIT ${STATS_CHART_SCAN_LIMIT})`,
  );
  const grouped = (await queryRows(
    prisma,
    "subscriptionStatsChart",
    sql`SELECT floor(extract(epoch FROM (received_at - ${start}::timestamptz)) / ${BUCKET_SECONDS})::int AS bucket, status, count(*)::int AS n, min(received_at) AS earliest
     FROM (${join(chartSql, " UNION ALL ")}) r GROUP BY 1, 2`,
    CHART_ROW,
  )) as Array<{ bucket: number; status: EventStatus; n: number; earliest: Date }>;
  // A status whose scan reached its bound saw nothing before its earliest row: buckets before that are incomplete.
  let completeFrom = start.getTime();
  for (const s of EVENT_STATUSES) {
    const rows = grouped.filter((g) => g.status === s);
    const total = rows.reduce((a, g) => a + g.n, 0);
    if (total >= STATS_CHART_SCAN_LIMIT) completeFrom = Math.max(completeFrom, Math.min(...rows.map((g) => g.earliest.getTime())));
  }
  const buckets = [];
  const count = Math.ceil((now.getTime() - start.getTime()) / (STATS_BUCKET_SECONDS * 1000));
  for (let i = 0; i < count; i++) {
    const at = start.getTime() + i * STATS_BUCKET_SECONDS * 1000;
    const mine = grouped.filter((g) => g.bucket === i);
    const sum = (statuses: readonly EventStatus[]) => mine.filter((g) => statuses.includes(g.status)).reduce((a, g) => a + g.n, 0);
    buckets.push({ start: new Date(at), received: sum(EVENT_STATUSES), backlog: sum(["pending", "delivered"]), complete: at + STATS_BUCKET_SECONDS * 1000 > completeFrom });
  }
  return { counts, oldestPendingAt: countRow?.oldest ?? null, now, buckets };
}
