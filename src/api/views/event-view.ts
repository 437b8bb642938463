import type { DeliveryRow, EventRow } from "../../store/events/event-row";
import type { DeliveryView, EventView, LeasedEvent } from "../contract/schemas";

/*
 * The API's JSON shapes of stored events: the store returns rows, these present them. A lease id
 * is a secret (like an SQS receipt handle): only leasedEventView, the lease answer of GET /inbox,
 * shows it; every other view shows that a lease exists (status delivered) and when it expires.
 */

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());
const isoOf = (d: Date | string): string => new Date(d).toISOString();

/** A delivery's state, the same on an event (its subscription's delivery) and on each delivery: a lease's expiry shows only while the delivery is leased; its id never. */
function deliveryState(row: EventRow | DeliveryRow) {
  return {
    status: row.status,
    delivery_count: row.delivery_count,
    leased_at: iso(row.leased_at),
    lease_expires_at: row.status === "delivered" ? iso(row.lease_expires_at) : null,
    acknowledged_at: iso(row.acknowledged_at),
    dead_at: iso(row.dead_at),
  };
}

/** The public JSON shape of a stored event with one delivery's state. Never includes the tenant or the body hash. */
export function eventView(row: EventRow): EventView {
  return {
    id: row.id,
    type: row.type,
    source: row.source,
    payload: row.payload,
    tags: row.tags ?? [],
    occurred_at: iso(row.occurred_at),
    received_at: isoOf(row.received_at),
    stored_at: isoOf(row.stored_at),
    schema_version: row.schema_version ?? null,
    ...deliveryState(row),
  };
}

export type { EventView };

/** An event as GET /inbox leases it: the event view and the lease id, for its holder only. */
export function leasedEventView(row: EventRow): LeasedEvent {
  // A row the lease statement answered always carries its lease id.
  return { ...eventView(row), lease_id: row.lease_id! };
}

/** One delivery of an event, as GET /events/{id} lists them. */
export function deliveryView(row: DeliveryRow): DeliveryView {
  return {
    subscription: row.subscription,
    ...deliveryState(row),
  };
}
