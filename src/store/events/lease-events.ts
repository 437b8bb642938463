import type { PrismaClient } from "../../generated/prisma/client";
import { empty, fragment, queryRows, sql, type Sql } from "../sql";
import { checkEventRows, eventRowColumns, type EventRow } from "./event-row";
import { filterSql, hasTagFilter, tagSql, TAG_SCAN_LIMIT, type InboxFilter } from "./inbox-filter";

export interface LeaseOptions {
  readonly tenantId: string;
  /** The subscription's internal id (resolveSubscription). */
  readonly subscriptionId: number;
  readonly limit: number;
  readonly visibilitySeconds: number;
  readonly maxDeliveries: number;
  readonly filter?: InboxFilter;
}

export interface LeaseResult {
  /** The leased events, oldest first, each with a fresh lease_id and lease_expires_at. */
  readonly events: EventRow[];
  /** More deliverable events matched the filter beyond this batch. */
  readonly hasMore: boolean;
  /** Events found past max deliveries and turned dead instead of being handed out. */
  readonly dead: number;
}

/**
 * Leases up to `limit` deliverable events of one subscription of a tenant (its deliveries) (pending, or delivered with an expired
 * lease; both have available_at <= now()), oldest first, in one statement. Rows locked by a
 * concurrent lease are skipped, so two consumers never receive the same event inside one lease.
 * An event that already had `maxDeliveries` deliveries becomes dead instead of being handed out.
 *
 * Every part is index-driven or bounded, and the shape is deliberate (plans checked in
 * inbox-peek.test.ts and inbox-depth-plans.test.ts):
 * - candidates walk deliveries_deliverable_idx (tenant_id, subscription_id, received_at, event_id) in order, or with a type
 *   or source filter deliveries_deliverable_type_idx / deliveries_deliverable_source_idx, so a filtered
 *   lease reads what matches, not the tenant's whole backlog;
 * - a tag filter has no index: it examines at most TAG_SCAN_LIMIT rows (the oldest matching the
 *   other filters; `win` marks the bound) and answers has_more: true when rows lie past the bound;
 * - the UPDATE finds its rows by primary key (`id = ANY(ARRAY(…))`), not through a join the
 *   planner may turn into a hash join over the whole table;
 * - `has_more` is answered in the same statement (no second round trip) by probing that index just
 *   past the last candidate. The probe compares against scalar sub-selects, so the row comparison
 *   is an index condition, and is an ordered LIMIT 1 scalar sub-select (EXISTS would drop the
 *   ORDER BY), so the planner does not pick a "fast-start" sequential scan that reads the whole
 *   table exactly when nothing more matches. A batch short of `limit` means nothing more was
 *   deliverable (bar rows other consumers were locking), so the probe is skipped then.
 * The payload comes from events by primary key, for the leased rows only.
 * Reading delivery_count from `e` (the delivery) is safe: the row is locked by `candidates`.
 */
export async function leaseEvents(prisma: PrismaClient, opts: LeaseOptions): Promise<LeaseResult> {
  const rows = await queryRows(prisma, "leaseEvents", leaseStatement(opts), LEASE_ROW);
  const events: EventRow[] = [];
  let dead = 0;
  for (const { has_more: _ignored, ...row } of rows) {
    if (row.id === null) continue; // the has_more-only row of an empty tag-filtered batch
    if (row.status === "delivered") events.push(row as unknown as EventRow);
    else dead++;
  }
  checkEventRows("leaseEvents", events);
  return { events, hasMore: rows[0]?.has_more === true, dead };
}

/** What the lease answers: event rows (every column null in the has_more-only row), checked in full once that row is left out. */
const LEASE_ROW = { id: "string?", status: "string?", has_more: "boolean?" } as const;

const C = fragment("c");
const M = fragment("m");
const W = fragment("w");
const LEASED_COLUMNS = eventRowColumns("e", "u");

/** Deliverable rows of the subscription under alias `a`: the leading columns and the predicate of the inbox indexes. */
function deliverable(a: Sql, tenantId: string, subscriptionId: number): Sql {
  return sql`${a}.tenant_id = ${tenantId} AND ${a}.subscription_id = ${subscriptionId} AND ${a}.status IN ('pending', 'delivered') AND ${a}.available_at <= now()`;
}

const PAST_BOUND = fragment("WHEN EXISTS (SELECT 1 FROM win) THEN true ");

/**
 * has_more: probes the first deliverable row past the last candidate (none looked for when the
 * batch was short). With a tag filter, rows past the bound were not examined: they may match, so
 * has_more is true when there are any (`win`); otherwise the probe is itself within the bound.
 */
function hasMore(opts: LeaseOptions, tagged: boolean): Sql {
  return sql`CASE ${tagged ? PAST_BOUND : empty}WHEN (SELECT count(*) FROM candidates) < ${opts.limit} THEN false ELSE (
       SELECT true FROM deliveries m
       WHERE ${deliverable(M, opts.tenantId, opts.subscriptionId)}
         AND (m.received_at, m.event_id) > ((SELECT received_at FROM last), (SELECT event_id FROM last))${filterSql(opts.filter ?? {}, "m")}
       ORDER BY m.received_at, m.event_id
       LIMIT 1
     ) IS NOT NULL END`;
}

/** The lease statement (see leaseEvents). */
function leaseStatement(opts: LeaseOptions): Sql {
  const f = opts.filter ?? {};
  const max = opts.maxDeliveries;
  const secs = opts.visibilitySeconds;
  let window = empty;
  let bound: Sql;
  let final: Sql;
  if (!hasTagFilter(f)) {
    bound = filterSql(f, "c");
    final = sql`SELECT ${LEASED_COLUMNS}, ${hasMore(opts, false)} AS has_more FROM updated u JOIN events e ON e.id = u.event_id ORDER BY u.received_at, u.event_id`;
  } else {
    // Tags: examine at most TAG_SCAN_LIMIT rows. `win` is the first row past that bound (none when
    // fewer rows match the other filters); candidates stop before it, as an index condition.
    window = sql`win AS (
       SELECT w.received_at, w.event_id FROM deliveries w
       WHERE ${deliverable(W, opts.tenantId, opts.subscriptionId)}${filterSql(f, "w", { tags: false })}
       ORDER BY w.received_at, w.event_id
       OFFSET ${TAG_SCAN_LIMIT} LIMIT 1
     ),
     `;
    bound = sql`${filterSql(f, "c", { tags: false })}${tagSql(f, "c")} AND (c.received_at, c.event_id) < (COALESCE((SELECT received_at FROM win), 'infinity'::timestamptz), COALESCE((SELECT event_id FROM win), ''))`;
    // With a tag filter an empty batch can still have has_more (rows past the bound), so the answer
    // carries one row even when nothing was leased; its event columns are null.
    final = sql`SELECT ${LEASED_COLUMNS}, hm.has_more FROM (SELECT ${hasMore(opts, true)} AS has_more) hm
       LEFT JOIN (updated u JOIN events e ON e.id = u.event_id) ON true ORDER BY u.received_at, u.event_id`;
  }
  return sql`WITH ${window}candidates AS (
       SELECT c.event_id, c.received_at FROM deliveries c
       WHERE ${deliverable(C, opts.tenantId, opts.subscriptionId)}${bound}
       ORDER BY c.received_at, c.event_id
       LIMIT ${opts.limit}
       FOR UPDATE SKIP LOCKED
     ),
     last AS (SELECT received_at, event_id FROM candidates ORDER BY received_at DESC, event_id DESC LIMIT 1),
     updated AS (
       UPDATE deliveries e SET
         status = CASE WHEN e.delivery_count >= ${max} THEN 'dead'::event_status ELSE 'delivered'::event_status END,
         dead_at = CASE WHEN e.delivery_count >= ${max} THEN now() ELSE NULL END,
         delivery_count = CASE WHEN e.delivery_count >= ${max} THEN e.delivery_count ELSE e.delivery_count + 1 END,
         lease_id = CASE WHEN e.delivery_count >= ${max} THEN NULL ELSE gen_random_uuid() END,
         leased_at = CASE WHEN e.delivery_count >= ${max} THEN e.leased_at ELSE now() END,
         lease_expires_at = CASE WHEN e.delivery_count >= ${max} THEN NULL ELSE now() + make_interval(secs => ${secs}) END,
         available_at = CASE WHEN e.delivery_count >= ${max} THEN e.available_at ELSE now() + make_interval(secs => ${secs}) END
       WHERE e.event_id = ANY (ARRAY(SELECT event_id FROM candidates)) AND e.subscription_id = ${opts.subscriptionId}
       RETURNING e.*
     )
     ${final}`;
}
