import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, queryRows, sql, type Column, type RowOf, type RowShape, type Sql } from "../sql";

/** Why a delivery could not make a transition; the API answers each with its own 409. */
export type TransitionRefusal = "lease_expired" | "not_delivered" | "already_acknowledged" | "event_dead" | "not_dead";

/** A transition the delivery's state did not allow. `prior` is the status it was in. */
export interface Refused {
  readonly refused: TransitionRefusal;
  readonly prior: string;
}

/** True when a store result is a refusal rather than the new state. */
export function isRefused<T extends object>(result: T | Refused): result is Refused {
  return "refused" in result;
}

/** One event's delivery in one subscription of a tenant, and the lease the caller holds, if any. */
export interface DeliveryKey {
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly eventId: string;
  readonly leaseId?: string | undefined;
}

/**
 * A transition of one delivery, as fragments over the locked row `t` and the updated row `e`; each
 * carries its own values (the caller's lease id, the transition's seconds) as bind parameters.
 */
export interface Transition<S extends RowShape> {
  /** The caller's claim on the delivery (its lease is the current one, or what an ack by id needs), evaluated on the locked row (columns unqualified). */
  readonly current: Sql;
  /** The condition, on `t` (status, current), under which the row changes. */
  readonly allowed: Sql;
  /** The SET list of the update, on `e`. */
  readonly set: Sql;
  /** Columns of the updated row to return, besides its id (transitionReturning). */
  readonly returning: TransitionReturning<S>;
}

/** The columns a transition returns, as the fragments of its statement and the row shape they answer. */
export interface TransitionReturning<S extends RowShape> {
  /** `, e.<column>` for each column, in the updated CTE's RETURNING list. */
  readonly updated: Sql;
  /** `, u.<column>` for each column, in the final select list. */
  readonly selected: Sql;
  /** The answer's shape: the prior status, the claim, the id and the columns (null when nothing changed). */
  readonly shape: typeof TRANSITION_ROW & S;
}

const TRANSITION_ROW = { prior: "string", current: "boolean", id: "string?" } as const;

/**
 * The returning columns of a transition, each with its kind (nullable: null when nothing changed).
 * Made once per transition, at module load.
 */
export function transitionReturning<S extends Readonly<Record<string, Extract<Column, `${string}?`>>>>(columns: S): TransitionReturning<S> {
  const names = Object.keys(columns);
  return {
    updated: fragment(names.map((c) => `, e.${c}`).join("")),
    selected: fragment(names.map((c) => `, u.${c}`).join("")),
    shape: { ...TRANSITION_ROW, ...columns },
  };
}

/** What a transition statement answers: the prior state, and the returning columns (all null when nothing changed). */
export type TransitionRow<S extends RowShape> = RowOf<typeof TRANSITION_ROW & S>;

/**
 * The one statement of every lease transition (ack, nack, extend): `target` locks the delivery
 * row and evaluates `current` under that lock, `updated` applies the transition only when
 * `allowed`, and the answer names the prior status, so the caller can tell "not found" (no row),
 * "refused" (row, nothing updated) and "done" apart from one round trip. The row lock makes the
 * lease check and the update one atomic step.
 */
export function transitionSql<S extends RowShape>(t: Transition<S>, key: DeliveryKey): Sql {
  return sql`WITH target AS (
       SELECT event_id AS id, status,
              (${t.current}) AS current
       FROM deliveries WHERE event_id = ${key.eventId} AND subscription_id = ${key.subscriptionId} AND tenant_id = ${key.tenantId}
       FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries e SET ${t.set}
       FROM target t
       WHERE e.event_id = t.id AND e.subscription_id = ${key.subscriptionId} AND ${t.allowed}
       RETURNING e.event_id AS id${t.returning.updated}
     )
     SELECT t.status::text AS prior, COALESCE(t.current, false) AS current, u.id${t.returning.selected}
     FROM target t LEFT JOIN updated u ON true`;
}

/** Runs a transition on one delivery. Undefined when the tenant has no such delivery. */
export async function transitionDelivery<S extends RowShape>(prisma: PrismaClient, statement: string, t: Transition<S>, key: DeliveryKey): Promise<TransitionRow<S> | undefined> {
  const rows = await queryRows(prisma, statement, transitionSql(t, key), t.returning.shape);
  return rows[0] as TransitionRow<S> | undefined;
}

/** The caller's lease id as a uuid parameter (null when none was given). */
export function leaseParam(leaseId: string | undefined): Sql {
  return sql`${leaseId ?? null}::uuid`;
}

/** A lease id matches the current lease: status delivered, the same lease id, not yet expired. */
export function leaseIsCurrent(leaseId: string | undefined): Sql {
  return sql`status = 'delivered' AND lease_id = ${leaseParam(leaseId)} AND lease_expires_at > now()`;
}

/**
 * A lease-bound ack holds the delivery: its lease is the current one, or the delivery was
 * acknowledged while that lease was its last (the holder's repeat). ACKNOWLEDGE_SET keeps the last
 * lease id for this check; no answer but the lease's own ever shows it.
 */
export function leaseHoldsAck(leaseId: string | undefined): Sql {
  return sql`lease_id = ${leaseParam(leaseId)} AND (status = 'acknowledged' OR (status = 'delivered' AND lease_expires_at > now()))`;
}

/**
 * A delivery was handed to a consumer at least once: it is not pending, or it is pending again
 * after a delivery (nacked: delivery_count > 0; redriven: leased_at kept). A lease never handed
 * out (release-leases.ts) undoes its count and leased_at, so it does not count. Columns unqualified.
 */
export const WAS_DELIVERED = fragment("(status <> 'pending' OR delivery_count > 0 OR leased_at IS NOT NULL)");

/**
 * The SET list that acknowledges a delivery (alias `e`): the first acknowledgement's time is kept,
 * the lease ends (no expiry) but its id stays, so only that lease's holder may repeat a lease-bound ack.
 */
export const ACKNOWLEDGE_SET = fragment("status = 'acknowledged', acknowledged_at = COALESCE(e.acknowledged_at, now()), lease_expires_at = NULL");
