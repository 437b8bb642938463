import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, join, queryRows, sql, type Sql } from "../sql";
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
  const parts = probes.map((p, i) => {
    const deliverable = sql`d.tenant_id = ${p.tenantId} AND d.subscription_id = ${p.subscriptionId}::int AND d.status IN ('pending', 'delivered') AND d.available_at <= now()`;
    let probe: Sql;
    if (!hasTagFilter(p.filter)) {
      probe = sql`SELECT true FROM deliveries d WHERE ${deliverable}${filterSql(p.filter, "d")} ORDER BY d.received_at, d.event_id LIMIT 1`;
    } else {
      const window = sql`SELECT d.tags FROM deliveries d WHERE ${deliverable}${filterSql(p.filter, "d", { tags: false })} ORDER BY d.received_at, d.event_id LIMIT ${TAG_SCAN_LIMIT}`;
      probe = sql`SELECT true FROM (${window}) w WHERE true${tagSql(p.filter, "w")} LIMIT 1`;
    }
    return sql`SELECT ${PROBE_KEYS[i]!} AS k, (${probe}) AS found`;
  });
  const rows = await queryRows(prisma, "probeDeliverable", join(parts, "\nUNION ALL\n"), { k: "int", found: "boolean?" });
  return new Set(rows.filter((r) => r.found === true).map((r) => r.k));
}

/** Each probe's index in the answer, as a literal of the statement's text. */
const PROBE_KEYS = Array.from({ length: PROBES_PER_STATEMENT }, (_, i) => fragment(String(i)));
