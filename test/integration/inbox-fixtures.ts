import { createHash } from "node:crypto";
import type { QueuedEvent } from "../../src/domain/queued-event";
import { newEventId } from "../../src/domain/ids";
import { insertEvents } from "../../src/store/events/insert-events";
import type { Harness } from "../helpers/harness";

export interface Fixture {
  readonly type?: string;
  readonly source?: string | null;
  readonly tags?: string[];
  /** received_at; defaults to a strictly increasing clock so insertion order is inbox order. */
  readonly receivedAt?: Date;
  readonly payload?: unknown;
}

let clock = Date.parse("2026-01-01T00:00:00.000Z");

/** Stores events straight into Postgres (no SQS), in one statement per 5 000; returns their ids in order. */
export async function seed(h: Harness, tenantId: string, fixtures: readonly Fixture[] | number): Promise<string[]> {
  const list: readonly Fixture[] = typeof fixtures === "number" ? Array.from({ length: fixtures }, () => ({})) : fixtures;
  const events: QueuedEvent[] = list.map((f, i) => {
    const received = f.receivedAt ?? new Date(clock++);
    return {
      v: 1,
      id: newEventId(received.getTime()),
      tenant_id: tenantId,
      type: f.type ?? "test.event",
      source: f.source === undefined ? null : f.source,
      tags: f.tags ?? [],
      payload: f.payload ?? { i },
      occurred_at: null,
      idempotency_key: null,
      body_hash: createHash("sha256").update(`${tenantId}:${i}:${Math.random()}`).digest("hex"),
      received_at: received.toISOString(),
    };
  });
  for (let i = 0; i < events.length; i += 5000) await insertEvents(h.c.db.prisma, events.slice(i, i + 5000));
  return events.map((e) => e.id);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ids of a response's data array. */
export const idsOf = (body: { data: Array<{ id: string }> }) => body.data.map((e) => e.id);
