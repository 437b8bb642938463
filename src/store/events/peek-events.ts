import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, join, queryRows, sql, type Sql } from "../sql";
import { EVENT_ROW, eventRowColumns, type EventRow } from "./event-row";
import { filterSql, hasTagFilter, tagCondition, TAG_SCAN_LIMIT, type InboxFilter } from "./inbox-filter";

/** A keyset position in the (received_at, id) order of a tenant's events: where a page ends. */
export interface KeysetPosition {
  readonly receivedAt: Date;
  readonly id: string;
}

export const EVENT_STATUSES = ["pending", "delivered", "acknowledged", "dead"] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

export interface PeekOptions {
  readonly tenantId: string;
  /** The subscription's internal id (resolveSubscription). */
  readonly subscriptionId: number;
  readonly limit: number;
  /** Only events in this status; undefined lists every status. */
  readonly status?: EventStatus | undefined;
  readonly filter?: InboxFilter;
  /** Start strictly after this position (from the previous page's cursor). */
  readonly after?: KeysetPosition | undefined;
}

/**
 * Lists the deliveries of one subscription of a tenant, with their events (joined by primary key
 * for the rows returned), in (received_at, id) order without leasing or locking anything.
 * Keyset pagination: a walk over every page sees each event that existed when it began exactly
 * once, however many events arrive meanwhile.
 *
 * Each status is read by its own ordered, limited scan, and the at most 4 × limit rows are merged;
 * so listing every status needs no extra full index on (tenant_id, received_at, id) that ingest
 * would pay for. Each branch names its status as a literal (statuses come from EVENT_STATUSES
 * only), so the planner can prove the partial indexes' predicate: pending and delivered rows
 * filtered by type or source are read through deliveries_deliverable_type_idx /
 * deliveries_deliverable_source_idx, the rest through deliveries_tenant_status_received_idx
 * (tenant_id, subscription_id, status, received_at, event_id).
 *
 * A tag filter has no index: each branch examines at most TAG_SCAN_LIMIT rows past the cursor
 * (those matching the other filters) and keeps the ones carrying the tags. When a branch reached
 * that bound, the page stops at the last row it examined and next_cursor points there, so a short
 * (even empty) page with a next_cursor means "keep walking", and the walk still sees every event.
 */
export async function peekEvents(prisma: PrismaClient, opts: PeekOptions): Promise<{ events: EventRow[]; next: KeysetPosition | null }> {
  const statuses = EVENT_STATUSES.filter((s) => opts.status === undefined || s === opts.status);
  const f = opts.filter ?? {};
  let where = filterSql(f, "", { tags: false });
  if (opts.after) where = sql`${where} AND (received_at, event_id) > (${opts.after.receivedAt}::timestamptz, ${opts.after.id})`;
  if (!hasTagFilter(f)) {
    // Each branch reads limit + 1 rows.
    const size = opts.limit + 1;
    const branches = statuses.map(
      (status) => sql`(SELECT * FROM deliveries
       WHERE tenant_id = ${opts.tenantId} AND subscription_id = ${opts.subscriptionId} AND status = ${STATUS_LITERAL[status]}${where}
       ORDER BY received_at, event_id
       LIMIT ${size})`,
    );
    const rows = await queryRows(
      prisma,
      "peekEvents",
      sql`SELECT ${PEEKED_COLUMNS} FROM (
       SELECT q.* FROM (${join(branches, "\n     UNION ALL ")}) q
       ORDER BY q.received_at, q.event_id
       LIMIT ${size}
     ) p JOIN events e ON e.id = p.event_id
     ORDER BY p.received_at, p.event_id`,
      EVENT_ROW,
    );
    return page(rows as EventRow[], opts.limit, null);
  }
  // Tags: each branch reads its first TAG_SCAN_LIMIT rows, flags those carrying the tags, and
  // returns the first limit + 1 of them plus its last examined row (when it read the whole
  // bound) as the window's end.
  const hit = tagCondition(f);
  const branches = statuses.map(
    (status) => sql`(SELECT * FROM (
         SELECT x.*, row_number() OVER w AS rn, count(*) FILTER (WHERE x.hit) OVER w AS hits, count(*) OVER () AS examined FROM (
           SELECT *, ${hit} AS hit FROM deliveries
           WHERE tenant_id = ${opts.tenantId} AND subscription_id = ${opts.subscriptionId} AND status = ${STATUS_LITERAL[status]}${where}
           ORDER BY received_at, event_id
           LIMIT ${TAG_SCAN_LIMIT}
         ) x
         WINDOW w AS (ORDER BY x.received_at, x.event_id)
       ) y WHERE (y.hit AND y.hits <= ${opts.limit + 1}) OR (y.rn = y.examined AND y.examined = ${TAG_SCAN_LIMIT}))`,
  );
  const rows = await queryRows(
    prisma,
    "peekEvents",
    sql`SELECT ${PEEKED_COLUMNS}, p.hit, p.rn, p.hits, p.examined
     FROM (${join(branches, "\n     UNION ALL ")}) p JOIN events e ON e.id = p.event_id
     ORDER BY p.received_at, p.event_id`,
    TAGGED_ROW,
  );
  // The earliest window end over the statuses that reached the bound: every row up to it was
  // examined in every branch, none after it is sure to be. Rows come in (received_at, id) order as
  // the database collates it, so "up to it" is a position in `rows`.
  const endAt = rows.findIndex((r) => r.examined === TAG_SCAN_LIMIT && r.rn === r.examined);
  const upTo = endAt === -1 ? rows : rows.slice(0, endAt + 1);
  const hits = upTo.filter((r) => r.hit).map(({ hit: _h, rn: _r, hits: _n, examined: _e, ...row }) => row as EventRow);
  const end = endAt === -1 ? null : { receivedAt: rows[endAt]!.received_at, id: rows[endAt]!.id };
  return page(hits, opts.limit, end);
}

/** Each status as a literal of the statement's text (statuses come from EVENT_STATUSES only), so the planner can prove the partial indexes' predicate. */
export const STATUS_LITERAL: Readonly<Record<EventStatus, Sql>> = Object.fromEntries(EVENT_STATUSES.map((s) => [s, fragment(`'${s}'`)])) as Record<EventStatus, Sql>;
const PEEKED_COLUMNS = eventRowColumns("e", "p");
/** A row of a tag-filtered peek: the event, whether it carries the tags, its place in its branch, and how many rows the branch examined. */
const TAGGED_ROW = { ...EVENT_ROW, hit: "boolean?", rn: "int", hits: "int", examined: "int" } as const;

/** `rows` ordered, up to limit + 1; `end` is where the examined window stopped (tag filters). */
function page(rows: EventRow[], limit: number, end: KeysetPosition | null): { events: EventRow[]; next: KeysetPosition | null } {
  const more = rows.length > limit;
  const events = more ? rows.slice(0, limit) : rows;
  const last = events[events.length - 1];
  if (more && last) return { events, next: { receivedAt: new Date(last.received_at), id: last.id } };
  return { events, next: end };
}
