import type { PrismaClient } from "../../generated/prisma/client";
import { EVENT_STATUSES, type EventStatus } from "./peek-events";

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

/**
 * A subscription's backlog without a COUNT over the table: each status is counted through
 * deliveries_tenant_status_received_idx up to STATS_COUNT_LIMIT rows; the oldest pending event is
 * the first row of that index; the chart groups at most STATS_CHART_SCAN_LIMIT newest rows per
 * status of the last hour. Three statements, each bounded, each scoped to the tenant.
 */
export async function subscriptionStats(prisma: PrismaClient, tenantId: string, subscriptionId: number): Promise<SubscriptionStats> {
  const countSql = EVENT_STATUSES.map(
    (s) => `(SELECT count(*)::int FROM (SELECT 1 FROM deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND status = '${s}' LIMIT $3) x) AS "${s}"`,
  ).join(", ");
  const [countRow] = await prisma.$queryRawUnsafe<Array<Record<EventStatus, number> & { oldest: Date | null; now: Date }>>(
    `SELECT ${countSql},
       (SELECT received_at FROM deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND status = 'pending' ORDER BY received_at, event_id LIMIT 1) AS oldest,
       now() AS now`,
    tenantId,
    subscriptionId,
    STATS_COUNT_LIMIT + 1,
  );
  const counts = Object.fromEntries(
    EVENT_STATUSES.map((s) => {
      const n = Number(countRow?.[s] ?? 0);
      return [s, { count: Math.min(n, STATS_COUNT_LIMIT), exact: n <= STATS_COUNT_LIMIT }];
    }),
  ) as Record<EventStatus, BoundedCount>;
  const now = new Date(countRow?.now ?? Date.now());
  const start = new Date(Math.floor((now.getTime() - STATS_WINDOW_SECONDS * 1000) / (STATS_BUCKET_SECONDS * 1000) + 1) * STATS_BUCKET_SECONDS * 1000);
  const chartSql = EVENT_STATUSES.map(
    (s) => `(SELECT '${s}' AS status, received_at FROM deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND status = '${s}' AND received_at >= $3::timestamptz
       ORDER BY received_at DESC, event_id DESC LIMIT $4)`,
  ).join(" UNION ALL ");
  const grouped = await prisma.$queryRawUnsafe<Array<{ bucket: number; status: EventStatus; n: number; earliest: Date }>>(
    `SELECT floor(extract(epoch FROM (received_at - $3::timestamptz)) / ${STATS_BUCKET_SECONDS})::int AS bucket, status, count(*)::int AS n, min(received_at) AS earliest
     FROM (${chartSql}) r GROUP BY 1, 2`,
    tenantId,
    subscriptionId,
    start,
    STATS_CHART_SCAN_LIMIT,
  );
  // A status whose scan reached its bound saw nothing before its earliest row: buckets before that are incomplete.
  let completeFrom = start.getTime();
  for (const s of EVENT_STATUSES) {
    const rows = grouped.filter((g) => g.status === s);
    const total = rows.reduce((a, g) => a + Number(g.n), 0);
    if (total >= STATS_CHART_SCAN_LIMIT) completeFrom = Math.max(completeFrom, Math.min(...rows.map((g) => new Date(g.earliest).getTime())));
  }
  const buckets = [];
  const count = Math.ceil((now.getTime() - start.getTime()) / (STATS_BUCKET_SECONDS * 1000));
  for (let i = 0; i < count; i++) {
    const at = start.getTime() + i * STATS_BUCKET_SECONDS * 1000;
    const mine = grouped.filter((g) => Number(g.bucket) === i);
    const sum = (statuses: readonly EventStatus[]) => mine.filter((g) => statuses.includes(g.status)).reduce((a, g) => a + Number(g.n), 0);
    buckets.push({ start: new Date(at), received: sum(EVENT_STATUSES), backlog: sum(["pending", "delivered"]), complete: at + STATS_BUCKET_SECONDS * 1000 > completeFrom });
  }
  return { counts, oldestPendingAt: countRow?.oldest ? new Date(countRow.oldest) : null, now, buckets };
}
