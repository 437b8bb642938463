import type { PrismaClient } from "../../generated/prisma/client";
import { queryRows, sql } from "../sql";
import { EVENT_ROW, eventRowColumns, type DeliveryRow, type EventRow } from "./event-row";

const EVENT_COLUMNS = eventRowColumns("e", "d");
/**
 * The event with its delivery in the subscription (its state columns null when there is none) and
 * every delivery as JSON (json_agg: timestamps as text), null when it has none.
 */
const GET_EVENT_ROW = {
  ...EVENT_ROW,
  status: "string?",
  available_at: "date?",
  delivery_count: "int?",
  deliveries: "json?",
} as const;

/**
 * One event of one tenant with the state of its delivery in `subscriptionId` (all state columns
 * null when that subscription has no delivery of it), and every delivery of the event by
 * subscription name. Null for an unknown event (also another tenant's).
 */
export async function getEvent(
  prisma: PrismaClient,
  tenantId: string,
  eventId: string,
  subscriptionId: number,
): Promise<{ row: EventRow; deliveries: DeliveryRow[] } | null> {
  const rows = await queryRows(
    prisma,
    "getEvent",
    sql`SELECT ${EVENT_COLUMNS},
       (SELECT json_agg(json_build_object(
           'subscription', s.name, 'status', a.status, 'delivery_count', a.delivery_count, 'available_at', a.available_at,
           'lease_id', a.lease_id, 'leased_at', a.leased_at, 'lease_expires_at', a.lease_expires_at,
           'acknowledged_at', a.acknowledged_at, 'dead_at', a.dead_at) ORDER BY s.name)
        FROM deliveries a JOIN subscriptions s ON s.id = a.subscription_id AND s.deleted_at IS NULL
        WHERE a.event_id = e.id AND a.tenant_id = ${tenantId}) AS deliveries
     FROM events e LEFT JOIN deliveries d ON d.event_id = e.id AND d.subscription_id = ${subscriptionId} AND d.tenant_id = ${tenantId}
     WHERE e.id = ${eventId} AND e.tenant_id = ${tenantId}`,
    GET_EVENT_ROW,
  );
  const first = rows[0];
  if (!first) return null;
  const { deliveries, ...row } = first;
  return { row: row as unknown as EventRow, deliveries: (deliveries as DeliveryRow[] | null) ?? [] };
}

/** The body hash of the event a tenant stored under an idempotency key, if any. */
export async function findByIdempotencyKey(
  prisma: PrismaClient,
  tenantId: string,
  key: string,
): Promise<{ id: string; body_hash: string } | null> {
  const row = await prisma.idempotencyKey.findUnique({
    where: { tenantId_idempotencyKey: { tenantId, idempotencyKey: key } },
    select: { eventId: true, bodyHash: true },
  });
  return row ? { id: row.eventId, body_hash: row.bodyHash } : null;
}
