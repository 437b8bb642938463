import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, queryRows, sql } from "../sql";
import { ACKNOWLEDGE_SET, leaseHoldsAck, leaseParam, transitionDelivery, transitionReturning, WAS_DELIVERED, type Refused } from "./delivery-transition";

const ACK_ALLOWED = fragment("t.current");
const ACK_RETURNING = transitionReturning({ acknowledged_at: "date?" });
/** Each delivery of an ack by ids: whether it was handed out (so acknowledged now), and whether this ack was its first. */
const ACK_MANY_ROW = { id: "string", delivered: "boolean", newly: "boolean" } as const;
/** Each delivery of a lease-bound batch ack as it was locked (prior status, lease, whether that lease was live), and whether this ack was its first. */
const ACK_LEASES_ROW = { id: "string", prior: "string", lease_id: "string?", live: "boolean", newly: "boolean" } as const;

export interface AckResult {
  readonly id: string;
  readonly acknowledged_at: Date;
  /** False when the event was already acknowledged (an idempotent repeat). */
  readonly newly: boolean;
}

/**
 * Acknowledges one event of a tenant for one subscription (its delivery), in one statement; other
 * subscriptions' deliveries of the event are untouched. Idempotent: acknowledging twice keeps the
 * first time. With `leaseId`, refused (lease_expired) unless that lease is the current one, or the
 * one the event was acknowledged under. Without it (an ack by event id), refused (not_delivered)
 * unless the delivery was handed to a consumer at least once (WAS_DELIVERED).
 * Returns null when the tenant has no such event.
 */
export async function ackEvent(prisma: PrismaClient, tenantId: string, subscriptionId: number, eventId: string, leaseId?: string): Promise<AckResult | Refused | null> {
  const row = await transitionDelivery(
    prisma,
    "ackEvent",
    {
      current: sql`CASE WHEN ${leaseParam(leaseId)} IS NULL THEN ${WAS_DELIVERED} ELSE COALESCE(${leaseHoldsAck(leaseId)}, false) END`,
      allowed: ACK_ALLOWED,
      set: ACKNOWLEDGE_SET,
      returning: ACK_RETURNING,
    },
    { tenantId, subscriptionId, eventId, leaseId },
  );
  if (!row) return null;
  if (row.id === null || row.acknowledged_at === null) return { refused: leaseId === undefined ? "not_delivered" : "lease_expired", prior: row.prior };
  return { id: row.id, acknowledged_at: row.acknowledged_at, newly: row.prior !== "acknowledged" };
}

export interface AckManyResult {
  /** Ids now acknowledged (including ones that already were), in request order. */
  readonly acknowledged: string[];
  /** Ids of events never handed to a consumer (WAS_DELIVERED): left pending, in request order. */
  readonly notDelivered: string[];
  /** Ids the tenant has no event for (another tenant's ids included), in request order. */
  readonly notFound: string[];
  /** How many of `acknowledged` were not acknowledged before. */
  readonly newly: number;
}

/**
 * Acknowledges many events of a tenant for one subscription by id, in one statement: each one
 * that was handed to a consumer at least once, as the single ack by id. Idempotent per id;
 * duplicates in `ids` count once. Ids of other tenants are reported as not found, exactly like ids
 * that never existed.
 */
export async function ackEvents(prisma: PrismaClient, tenantId: string, subscriptionId: number, ids: readonly string[]): Promise<AckManyResult> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return { acknowledged: [], notDelivered: [], notFound: [], newly: 0 };
  // `prior` is read under FOR UPDATE, so it is the latest committed status even when a concurrent
  // ack raced this one; the metrics then count every event exactly once.
  const rows = await queryRows(
    prisma,
    "ackEvents",
    sql`WITH prior AS (
       SELECT event_id, status, ${WAS_DELIVERED} AS delivered
       FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND event_id = ANY(${unique}::text[]) ORDER BY event_id FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries e SET ${ACKNOWLEDGE_SET}
       FROM prior WHERE e.event_id = prior.event_id AND e.subscription_id = ${subscriptionId} AND prior.delivered
       RETURNING e.event_id AS id, prior.status <> 'acknowledged' AS newly
     )
     SELECT p.event_id AS id, p.delivered, COALESCE(u.newly, false) AS newly FROM prior p LEFT JOIN updated u ON u.id = p.event_id`,
    ACK_MANY_ROW,
  );
  const delivered = new Map(rows.map((r) => [r.id, r.delivered]));
  return {
    acknowledged: unique.filter((id) => delivered.get(id) === true),
    notDelivered: unique.filter((id) => delivered.get(id) === false),
    notFound: unique.filter((id) => !delivered.has(id)),
    newly: rows.filter((r) => r.newly).length,
  };
}

/** The outcome of one item of a lease-bound batch ack. */
export interface LeaseAckItem {
  readonly id: string;
  readonly lease_id: string;
  /** acknowledged (now, or before under this lease), lease_expired (not the current lease nor the one it was acknowledged under: it may have been redelivered), not_found. */
  readonly status: "acknowledged" | "lease_expired" | "not_found";
}

/**
 * Acknowledges many leased events of a tenant in one statement, each only if its lease_id is
 * still the event's current lease (or the one it was acknowledged under), exactly as the single
 * lease-bound ack. Results come in request order, one per item; other tenants' ids are not_found.
 */
export async function ackLeases(
  prisma: PrismaClient,
  tenantId: string,
  subscriptionId: number,
  leases: ReadonlyArray<{ id: string; lease_id: string }>,
): Promise<{ results: LeaseAckItem[]; newly: number }> {
  if (leases.length === 0) return { results: [], newly: 0 };
  const ids = leases.map((l) => l.id);
  const leaseIds = leases.map((l) => l.lease_id.toLowerCase());
  const rows = await queryRows(
    prisma,
    "ackLeases",
    sql`WITH req AS (SELECT DISTINCT id, lease_id FROM unnest(${ids}::text[], ${leaseIds}::uuid[]) AS r(id, lease_id)),
     locked AS (
       SELECT event_id AS id, status, lease_id, COALESCE(lease_expires_at > now(), false) AS live
       FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND event_id = ANY(${ids}::text[]) ORDER BY event_id FOR UPDATE
     ),
     ok AS (
       SELECT DISTINCT l.id FROM locked l JOIN req r ON r.id = l.id
       WHERE l.lease_id = r.lease_id AND (l.status = 'acknowledged' OR (l.status = 'delivered' AND l.live))
     ),
     updated AS (
       UPDATE deliveries e SET ${ACKNOWLEDGE_SET}
       FROM locked l WHERE e.event_id = l.id AND e.subscription_id = ${subscriptionId} AND l.id IN (SELECT id FROM ok)
       RETURNING e.event_id AS id, l.status <> 'acknowledged' AS newly
     )
     SELECT l.id, l.status::text AS prior, l.lease_id::text AS lease_id, l.live, COALESCE(u.newly, false) AS newly
     FROM locked l LEFT JOIN updated u ON u.id = l.id`,
    ACK_LEASES_ROW,
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const results = leases.map((l, i): LeaseAckItem => {
    const row = byId.get(l.id);
    if (!row) return { id: l.id, lease_id: l.lease_id, status: "not_found" };
    const current = row.lease_id === leaseIds[i] && (row.prior === "acknowledged" || (row.prior === "delivered" && row.live));
    return { id: l.id, lease_id: l.lease_id, status: current ? "acknowledged" : "lease_expired" };
  });
  return { results, newly: rows.filter((r) => r.newly).length };
}
