import type { PrismaClient } from "../generated/prisma/client";
import { queryRows, sql, type Sql } from "./sql";

/** One subscription's backlog: its deliveries not yet acknowledged nor dead (pending or leased). */
export interface SubscriptionBacklog {
  readonly tenantId: string;
  readonly subscription: string;
  readonly backlog: number;
}

/** A subscription and its backlog (count(*): a bigint, answered as a number). */
const BACKLOG_ROW = { tenant_id: "string", name: "string", backlog: "int" } as const;

/** The statement of largestBacklogs; exported for the query-plan test. */
export function largestBacklogsSql(limit: number): Sql {
  return sql`SELECT b.tenant_id, s.name, b.backlog
  FROM (SELECT d.tenant_id, d.subscription_id, count(*) AS backlog
          FROM deliveries d
         WHERE d.status IN ('pending', 'delivered')
         GROUP BY d.tenant_id, d.subscription_id) b
  JOIN subscriptions s ON s.id = b.subscription_id AND s.tenant_id = b.tenant_id AND s.deleted_at IS NULL
 ORDER BY b.backlog DESC, b.tenant_id, s.name
 LIMIT ${limit}::int`;
}

/**
 * The `limit` live subscriptions with the largest backlog, across every tenant, largest first (ties
 * by tenant and name). One statement: a grouped index-only walk of deliveries_deliverable_idx (its
 * partial predicate is this backlog, its leading columns the grouping), then a join of the groups
 * with subscriptions for the name; deleted subscriptions (purged in batches afterwards) are left
 * out. Its cost grows with the backlog of all tenants together, not with the number of tenants.
 */
export async function largestBacklogs(prisma: PrismaClient, limit: number): Promise<SubscriptionBacklog[]> {
  if (!Number.isInteger(limit) || limit < 1) return [];
  const rows = await queryRows(prisma, "largestBacklogs", largestBacklogsSql(limit), BACKLOG_ROW);
  return rows.map((r) => ({ tenantId: r.tenant_id, subscription: r.name, backlog: r.backlog }));
}
