import { createHash } from "node:crypto";
import type { PrismaClient } from "../../src/generated/prisma/client";
import type { QueuedEvent } from "../../src/domain/queued-event";
import { newEventId } from "../../src/domain/ids";
import { insertEvents } from "../../src/store/events/insert-events";
import { setDeliveryState, type FixtureState } from "../../src/store/events/fixture-states";

/*
 * Typed factories: rows in a given state, made through the store's own statements (the insert the
 * worker runs, then one state statement), never with SQL of a test's own.
 */

/** One event to store; every field has a default. */
export interface EventFixture {
  readonly type?: string;
  readonly source?: string | null;
  readonly tags?: readonly string[];
  readonly payload?: unknown;
  /** received_at; defaults to a strictly increasing clock, so insertion order is inbox order. */
  readonly receivedAt?: Date;
  readonly idempotencyKey?: string | null;
}

let clock = Date.parse("2026-01-01T00:00:00.000Z");

/** A queued event as the API would have sent it, for a tenant. */
export function queuedEvent(tenantId: string, f: EventFixture = {}, i = 0): QueuedEvent {
  const received = f.receivedAt ?? new Date(clock++);
  return {
    v: 1,
    id: newEventId(received.getTime()),
    tenant_id: tenantId,
    type: f.type ?? "test.event",
    source: f.source === undefined ? null : f.source,
    tags: [...(f.tags ?? [])],
    payload: f.payload ?? { i },
    occurred_at: null,
    idempotency_key: f.idempotencyKey ?? null,
    body_hash: createHash("sha256").update(`${tenantId}:${i}:${Math.random()}`).digest("hex"),
    received_at: received.toISOString(),
  };
}

/** Stores events (pending, one delivery per matching subscription), 5 000 per statement; answers their ids in order. */
export async function storeEvents(prisma: PrismaClient, tenantId: string, fixtures: readonly EventFixture[] | number): Promise<string[]> {
  const list: readonly EventFixture[] = typeof fixtures === "number" ? Array.from({ length: fixtures }, () => ({})) : fixtures;
  const events = list.map((f, i) => queuedEvent(tenantId, f, i));
  for (let i = 0; i < events.length; i += 5000) await insertEvents(prisma, events.slice(i, i + 5000));
  return events.map((e) => e.id);
}

/** Puts stored events' deliveries into a state (of every subscription, or of one). */
export function putInState(prisma: PrismaClient, tenantId: string, eventIds: readonly string[], state: FixtureState, subscriptionId?: number): Promise<number> {
  return setDeliveryState(prisma, tenantId, eventIds, state, subscriptionId);
}

/** Stores events and puts their deliveries into a state at once; answers their ids. */
export async function storeEventsIn(prisma: PrismaClient, tenantId: string, state: FixtureState, fixtures: readonly EventFixture[] | number): Promise<string[]> {
  const ids = await storeEvents(prisma, tenantId, fixtures);
  await putInState(prisma, tenantId, ids, state);
  return ids;
}
