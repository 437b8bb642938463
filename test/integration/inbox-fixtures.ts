import { storeEvents, type EventFixture } from "../helpers/factories";
import type { Harness } from "../helpers/harness";

export type Fixture = EventFixture;

/** Stores events straight into Postgres (no SQS), in one statement per 5 000; returns their ids in order. */
export function seed(h: Harness, tenantId: string, fixtures: readonly Fixture[] | number): Promise<string[]> {
  return storeEvents(h.c.db.prisma, tenantId, fixtures);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ids of a response's data array. */
export const idsOf = (body: { data: Array<{ id: string }> }) => body.data.map((e) => e.id);
