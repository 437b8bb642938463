import type { PrismaClient } from "../../generated/prisma/client";
import { empty, fragment, join, queryRows, sql, type RowOf, type Sql } from "../sql";
import { EVENT_ROW, eventRowColumns, type EventRow } from "./event-row";
import { EVENT_STATUSES, STATUS_LITERAL, type EventStatus, type KeysetPosition } from "./peek-events";

/**
 * How many delivery rows one listing examines per status when it has a condition no index serves
 * (type, source, tags, payload search): the rows of each status are read newest first through
 * deliveries_tenant_status_received_idx, at most this many, and only those matching are kept.
 * Past the bound the page stops where the scan stopped and next_cursor points there, so a short
 * (even empty) page with a next_cursor means "keep walking"; every event is still seen once.
 */
export const LIST_SCAN_LIMIT = 2000;

export interface ListFilter {
  readonly status?: EventStatus | undefined;
  readonly type?: string | undefined;
  readonly source?: string | undefined;
  /** The event must carry every one of these tags. */
  readonly tags?: readonly string[] | undefined;
  /** Inclusive lower bound on received_at. */
  readonly since?: Date | undefined;
  /** Exclusive upper bound on received_at. */
  readonly until?: Date | undefined;
  /** Case-insensitive substring of the payload's JSON text (bounded scan, no index). */
  readonly q?: string | undefined;
}

export interface ListOptions {
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly limit: number;
  readonly filter: ListFilter;
  /**
   * "older": newest first, strictly before `from` (a page of the list);
   * "newer": oldest first, strictly after `from` (the live tail).
   */
  readonly direction: "older" | "newer";
  readonly from?: KeysetPosition | undefined;
}

/** A row a branch examined: its position, whether it matched the conditions (null: a condition was unknown), and its status. */
const SCAN_ROW = { event_id: "string", received_at: "date", hit: "boolean?", branch: "string" } as const;
type ScanRow = RowOf<typeof SCAN_ROW>;

const TRUE = fragment("true");
const LT = fragment("<");
const GT = fragment(">");
const ASC = fragment("ASC");
const DESC = fragment("DESC");
const LISTED_COLUMNS = eventRowColumns("e", "d");

/** Whether the filter has a condition that only a bounded scan can check. */
export function scansRows(f: ListFilter): boolean {
  return f.type !== undefined || f.source !== undefined || (f.tags !== undefined && f.tags.length > 0) || f.q !== undefined;
}

/** Escapes LIKE's wildcards, so `q` is matched as plain text. */
function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const cmp = (a: { received_at: Date; event_id: string }, b: { received_at: Date; event_id: string }): number => {
  const t = new Date(a.received_at).getTime() - new Date(b.received_at).getTime();
  if (t !== 0) return t;
  return a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0;
};

/**
 * The event ids of one page of a subscription's deliveries, newest first ("older") or oldest first
 * ("newer"), never a COUNT over the table: each status is one ordered, limited index scan (limit + 1
 * rows, or LIST_SCAN_LIMIT when a condition needs the rows themselves) and the branches are merged
 * here. `next` is where the page (or the bounded scan) stopped. Tenant-scoped.
 */
export async function listEventIds(prisma: PrismaClient, opts: ListOptions): Promise<{ ids: string[]; next: KeysetPosition | null }> {
  const f = opts.filter;
  const statuses = EVENT_STATUSES.filter((s) => f.status === undefined || s === f.status);
  const scanning = scansRows(f);
  const window = scanning ? LIST_SCAN_LIMIT : opts.limit + 1;
  const desc = opts.direction === "older";
  let where = empty;
  if (f.since !== undefined) where = sql`${where} AND received_at >= ${f.since}::timestamptz`;
  if (f.until !== undefined) where = sql`${where} AND received_at < ${f.until}::timestamptz`;
  if (opts.from) where = sql`${where} AND (received_at, event_id) ${desc ? LT : GT} (${opts.from.receivedAt}::timestamptz, ${opts.from.id})`;
  const hits: Sql[] = [];
  if (f.type !== undefined) hits.push(sql`d.type = ${f.type}`);
  if (f.source !== undefined) hits.push(sql`d.source = ${f.source}`);
  if (f.tags !== undefined && f.tags.length > 0) hits.push(sql`d.tags @> ${[...f.tags]}::text[]`);
  if (f.q !== undefined) hits.push(sql`e.payload::text ILIKE ${likePattern(f.q)}`);
  const hit = hits.length > 0 ? join(hits, " AND ") : TRUE;
  const order = desc ? DESC : ASC;
  const events = f.q !== undefined ? sql` LEFT JOIN events e ON e.id = d.event_id AND e.tenant_id = ${opts.tenantId}` : empty;
  // Each branch names its status as a literal, so the planner can use the status index's prefix.
  const branches = statuses.map(
    (status) => sql`(SELECT d.event_id, d.received_at, ${hit} AS hit, ${STATUS_LITERAL[status]} AS branch FROM (
       SELECT event_id, received_at, type, source, tags FROM deliveries
       WHERE tenant_id = ${opts.tenantId} AND subscription_id = ${opts.subscriptionId} AND status = ${STATUS_LITERAL[status]}${where}
       ORDER BY received_at ${order}, event_id ${order}
       LIMIT ${window}) d${events})`,
  );
  const scanned: ScanRow[] = await queryRows(prisma, "listEventsScan", join(branches, "\n UNION ALL "), SCAN_ROW);
  const sign = desc ? -1 : 1;
  const byBranch = new Map<string, ScanRow[]>();
  for (const r of scanned) {
    const rows = byBranch.get(r.branch);
    if (rows) rows.push(r);
    else byBranch.set(r.branch, [r]);
  }
  // Where the examined windows end: a branch that read its whole window examined nothing beyond
  // its last row, so only rows up to the nearest such end (in walking order) are certain.
  let end: ScanRow | null = null;
  for (const rows of byBranch.values()) {
    if (rows.length < window) continue;
    const last = rows.reduce((a, b) => (sign * cmp(a, b) > 0 ? a : b));
    if (end === null || sign * cmp(last, end) < 0) end = last;
  }
  const kept = scanned
    .filter((r) => r.hit && (end === null || sign * cmp(r, end) <= 0))
    .sort((a, b) => sign * cmp(a, b));
  const page = kept.slice(0, opts.limit);
  let next: KeysetPosition | null = null;
  const lastKept = page[page.length - 1];
  if (kept.length > opts.limit && lastKept) next = { receivedAt: new Date(lastKept.received_at), id: lastKept.event_id };
  else if (end !== null) next = { receivedAt: new Date(end.received_at), id: end.event_id };
  return { ids: page.map((r) => r.event_id), next };
}

/**
 * One page of a subscription's deliveries with their events (listEventIds' page), the events read
 * by primary key. Tenant-scoped in every statement.
 */
export async function listEvents(prisma: PrismaClient, opts: ListOptions): Promise<{ events: EventRow[]; next: KeysetPosition | null }> {
  const { ids, next } = await listEventIds(prisma, opts);
  if (ids.length === 0) return { events: [], next };
  const rows = (await queryRows(
    prisma,
    "listEvents",
    sql`SELECT ${LISTED_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id AND e.tenant_id = ${opts.tenantId}
     WHERE d.tenant_id = ${opts.tenantId} AND d.subscription_id = ${opts.subscriptionId} AND d.event_id = ANY(${ids}::text[])`,
    EVENT_ROW,
  )) as EventRow[];
  const byId = new Map(rows.map((r) => [r.id, r]));
  return { events: ids.flatMap((id) => byId.get(id) ?? []), next };
}
