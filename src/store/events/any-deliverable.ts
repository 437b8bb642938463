import type { PrismaClient } from "../../generated/prisma/client";
import { filterSql, hasTagFilter, tagSql, TAG_SCAN_LIMIT, type InboxFilter } from "./inbox-filter";

/** One (tenant, subscription, filter) that long polls wait on. */
export interface DeliverableProbe {
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly filter: InboxFilter;
}

/** Probes per statement at most, so one statement stays small whatever the number of keys. */
export const PROBES_PER_STATEMENT = 50;

/**
 * For each probe, whether a lease with its filter would find something now: one statement for up to
 * PROBES_PER_STATEMENT probes (callers chunk). Each probe is an ordered LIMIT 1 scalar sub-select on
 * the lease's own index (deliveries_deliverable_idx, or its type / source variant), so it stops at
 * the first deliverable row instead of reading the backlog; a tag filter examines at most
 * TAG_SCAN_LIMIT rows, as the lease does. Answers the indexes of the probes that found something.
 */
export async function probeDeliverable(prisma: PrismaClient, probes: readonly DeliverableProbe[]): Promise<Set<number>> {
  if (probes.length === 0) return new Set();
  if (probes.length > PROBES_PER_STATEMENT) throw new RangeError(`at most ${PROBES_PER_STATEMENT} probes per statement`);
  const params: unknown[] = [];
  const add = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const parts = probes.map((p, i) => {
    const deliverable = `d.tenant_id = ${add(p.tenantId)} AND d.subscription_id = ${add(p.subscriptionId)}::int AND d.status IN ('pending', 'delivered') AND d.available_at <= now()`;
    let probe: string;
    if (!hasTagFilter(p.filter)) {
      probe = `SELECT true FROM deliveries d WHERE ${deliverable}${filterSql(p.filter, params, "d")} ORDER BY d.received_at, d.event_id LIMIT 1`;
    } else {
      const window = `SELECT d.tags FROM deliveries d WHERE ${deliverable}${filterSql(p.filter, params, "d", { tags: false })} ORDER BY d.received_at, d.event_id LIMIT ${add(TAG_SCAN_LIMIT)}`;
      probe = `SELECT true FROM (${window}) w WHERE true${tagSql(p.filter, params, "w")} LIMIT 1`;
    }
    return `SELECT ${i} AS k, (${probe}) AS found`;
  });
  const rows = await prisma.$queryRawUnsafe<Array<{ k: number; found: boolean | null }>>(parts.join("\nUNION ALL\n"), ...params);
  return new Set(rows.filter((r) => r.found === true).map((r) => Number(r.k)));
}
