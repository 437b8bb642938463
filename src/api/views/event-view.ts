import type { DeliveryRow, EventRow } from "../../store/events/event-row";

/*
 * The API's JSON shapes of stored events: the store returns rows, these present them.
 */

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** A delivery's state, the same on an event (its subscription's delivery) and on each delivery: a lease shows only while the delivery is leased. */
function deliveryState(row: EventRow | DeliveryRow) {
  return {
    status: row.status,
    delivery_count: row.delivery_count,
    lease_id: row.status === "delivered" ? row.lease_id : null,
    leased_at: iso(row.leased_at),
    lease_expires_at: row.status === "delivered" ? iso(row.lease_expires_at) : null,
    acknowledged_at: iso(row.acknowledged_at),
    dead_at: iso(row.dead_at),
  };
}

/** The public JSON shape of a stored event with one delivery's state. Never includes the tenant or the body hash. */
export function eventView(row: EventRow) {
  return {
    id: row.id,
    type: row.type,
    source: row.source,
    payload: row.payload,
    tags: row.tags ?? [],
    occurred_at: iso(row.occurred_at),
    received_at: iso(row.received_at),
    stored_at: iso(row.stored_at),
    ...deliveryState(row),
  };
}

export type EventView = ReturnType<typeof eventView>;

/** One delivery of an event, as GET /events/{id} lists them. */
export function deliveryView(row: DeliveryRow) {
  return {
    subscription: row.subscription,
    ...deliveryState(row),
  };
}
