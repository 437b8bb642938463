import type { CloudEventAttributes } from "../../domain/cloudevent-attributes";
import { checkRows, fragment, type RowShape, type Sql } from "../sql";

/** An event as raw SQL returns it (snake_case columns): the event's own columns and one delivery's state. */
export interface EventRow {
  id: string;
  tenant_id: string;
  type: string;
  source: string | null;
  payload: unknown;
  tags: string[] | null;
  idempotency_key: string | null;
  body_hash: string;
  status: "pending" | "delivered" | "acknowledged" | "dead";
  occurred_at: Date | null;
  received_at: Date;
  stored_at: Date;
  /** The schema version the event was validated against at ingest (null: its type had none). */
  schema_version: number | null;
  /** The CloudEvent attributes the envelope has no field for (null: not sent as a CloudEvent). */
  cloudevent: CloudEventAttributes | null;
  available_at: Date;
  lease_id: string | null;
  leased_at: Date | null;
  lease_expires_at: Date | null;
  delivery_count: number;
  acknowledged_at: Date | null;
  dead_at: Date | null;
}

/** The event's own columns (on events). */
export const EVENT_OWN_COLUMNS = ["id", "tenant_id", "type", "source", "payload", "tags", "idempotency_key", "body_hash", "occurred_at", "received_at", "stored_at", "schema_version", "cloudevent"] as const;
/** A delivery's state columns (on deliveries). */
export const DELIVERY_STATE_COLUMNS = ["status", "available_at", "lease_id", "leased_at", "lease_expires_at", "delivery_count", "acknowledged_at", "dead_at"] as const;

/** The select list of an EventRow from an events alias `e` joined with a deliveries alias `d`. */
export function eventRowColumns(e = "e", d = "d"): Sql {
  return fragment([...EVENT_OWN_COLUMNS.map((c) => `${e}.${c}`), ...DELIVERY_STATE_COLUMNS.map((c) => `${d}.${c}`)].join(", "));
}

/**
 * An EventRow's columns as the store answers them (on Postgres and on PGlite): jsonb as parsed
 * JSON (a payload may be JSON null), text[] as strings, the status enum as its label.
 */
export const EVENT_ROW = {
  id: "string",
  tenant_id: "string",
  type: "string",
  source: "string?",
  payload: "json?",
  tags: "strings?",
  idempotency_key: "string?",
  body_hash: "string",
  occurred_at: "date?",
  received_at: "date",
  stored_at: "date",
  schema_version: "int?",
  cloudevent: "json?",
  status: "string",
  available_at: "date",
  lease_id: "string?",
  leased_at: "date?",
  lease_expires_at: "date?",
  delivery_count: "int",
  acknowledged_at: "date?",
  dead_at: "date?",
} as const satisfies RowShape;

/** Checks rows that carry an EventRow's columns (and maybe more) against EVENT_ROW; answers them as EventRows. */
export function checkEventRows<T extends object>(statement: string, rows: readonly T[]): Array<T & EventRow> {
  return checkRows(statement, rows, EVENT_ROW) as unknown as Array<T & EventRow>;
}

/** One delivery of an event, as GET /events/{id} lists them. */
export interface DeliveryRow {
  subscription: string;
  status: EventRow["status"];
  delivery_count: number;
  available_at: Date;
  lease_id: string | null;
  leased_at: Date | null;
  lease_expires_at: Date | null;
  acknowledged_at: Date | null;
  dead_at: Date | null;
}
