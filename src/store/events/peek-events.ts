import type { PrismaClient } from "../../generated/prisma/client";
import { eventRowColumns, type EventRow } from "./event-row";
import { filterSql, type InboxFilter } from "./inbox-filter";
import type { KeysetPosition } from "./cursor";

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
 * Lists the deliveries of one subscription of a tenant, with their events, in (received_at, id)
 * order without leasing or locking anything.
 * Keyset pagination: a walk over every page sees each event that existed when it began exactly
 * once, however many events arrive meanwhile.
 *
 * Each status is read through deliveries_tenant_status_received_idx (tenant_id, subscription_id,
 * status, received_at, event_id) by its own ordered, limited scan, and the at most 4 × limit rows
 * are merged (then joined to events by primary key); so listing every status needs no extra full
 * index on (tenant_id, subscription_id, received_at, event_id) that ingest would pay for.
 */
export async function peekEvents(prisma: PrismaClient, opts: PeekOptions): Promise<{ events: EventRow[]; next: KeysetPosition | null }> {
  const statuses = opts.status === undefined ? [...EVENT_STATUSES] : [opts.status];
  const params: unknown[] = [opts.tenantId, statuses, opts.limit + 1, opts.subscriptionId];
  let where = filterSql(opts.filter ?? {}, params);
  if (opts.after) {
    params.push(opts.after.receivedAt, opts.after.id);
    where += ` AND (received_at, event_id) > ($${params.length - 1}::timestamptz, $${params.length})`;
  }
  const rows = await prisma.$queryRawUnsafe<EventRow[]>(
    `SELECT ${eventRowColumns("e", "p")} FROM (
       SELECT q.* FROM unnest($2::event_status[]) AS s(status)
       CROSS JOIN LATERAL (
         SELECT * FROM deliveries
         WHERE tenant_id = $1 AND subscription_id = $4 AND status = s.status${where}
         ORDER BY received_at, event_id
         LIMIT $3
       ) q
       ORDER BY q.received_at, q.event_id
       LIMIT $3
     ) p JOIN events e ON e.id = p.event_id
     ORDER BY p.received_at, p.event_id`,
    ...params,
  );
  const more = rows.length > opts.limit;
  const events = more ? rows.slice(0, opts.limit) : rows;
  const last = events[events.length - 1];
  return { events, next: more && last ? { receivedAt: new Date(last.received_at), id: last.id } : null };
}
