import { createHash } from "node:crypto";
import type { QueuedEvent } from "../../src/domain/queued-event";
import { idempotentEventId, newEventId } from "../../src/domain/ids";
import { insertEvents } from "../../src/store/events/insert-events";
import { storedBodyHashes } from "../../src/store/events/idempotency-keys";
import { ensurePartitions, listPartitions } from "../../src/store/partitions";
import { startWorkerRole } from "../../src/roles/worker";
import { startScheduler } from "../../src/roles/scheduler";
import { openTestDatabase, startHarness, type Harness } from "../helpers/harness";

/**
 * Time partitions of events and deliveries (migration 20261207000100_partitioned_history,
 * src/store/partitions.ts): rows at a partition's edges land where they belong, a row outside every
 * partition is stored all the same (its partition is made on demand), partitions are created ahead
 * at start and by the scheduler's job, and an idempotency key holds across partitions.
 */

const DAY_MS = 86_400_000;

function queued(over: Partial<QueuedEvent> & { received_at: string }): QueuedEvent {
  const payload = over.payload ?? { n: 1 };
  return {
    v: 1,
    id: over.id ?? newEventId(Date.parse(over.received_at)),
    tenant_id: "tp",
    type: "part.test",
    source: null,
    tags: [],
    occurred_at: null,
    idempotency_key: null,
    body_hash: createHash("sha256").update(JSON.stringify(payload)).digest("hex"),
    ...over,
    payload,
  } as QueuedEvent;
}

/** Which partition of `parent` holds each row of `ids`. */
async function placement(sql: (text: string, params?: unknown[]) => Promise<Array<{ id: string; part: string }>>, parent: "events" | "deliveries", ids: string[]) {
  const idCol = parent === "events" ? "id" : "event_id";
  const rows = await sql(`SELECT ${idCol} AS id, tableoid::regclass::text AS part FROM ${parent} WHERE ${idCol} = ANY($1::text[])`, [ids]);
  return Object.fromEntries(rows.map((r) => [r.id, r.part.replace(/^.*\./, "").replace(/"/g, "")]));
}

describe("partitions: inserts at the edges and outside every partition", () => {
  let opened: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    opened = await openTestDatabase();
  });
  afterAll(() => opened.close());

  test("the migration made one-day partitions from a day back to three ahead, none DEFAULT, same bounds on both tables", async () => {
    const events = await listPartitions(opened.db.prisma, "events");
    const deliveries = await listPartitions(opened.db.prisma, "deliveries");
    expect(deliveries.map((p) => [p.lower.getTime(), p.upper.getTime()])).toEqual(events.map((p) => [p.lower.getTime(), p.upper.getTime()]));
    const now = Date.now();
    expect(events[0]!.lower.getTime()).toBeLessThanOrEqual(now - DAY_MS);
    expect(events.at(-1)!.upper.getTime()).toBeGreaterThan(now + 3 * DAY_MS);
    for (const p of events) {
      expect(p.upper.getTime() - p.lower.getTime()).toBe(DAY_MS);
      expect(p.lower.getTime() % DAY_MS).toBe(0);
      expect(p.name).toBe(`events_p${p.lower.toISOString().slice(0, 10).replace(/-/g, "")}t000000`);
    }
    const defaults = await opened.db.migrator.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent IN ('events'::regclass, 'deliveries'::regclass) AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'`,
    );
    expect(defaults[0]!.n).toBe(0);
  });

  test("a row exactly at a lower bound, one 1 ms before it, and one outside every partition are all stored where they belong", async () => {
    const parts = await listPartitions(opened.db.prisma, "events");
    const edge = parts[1]!; // a partition with one before it
    const atEdge = queued({ received_at: edge.lower.toISOString() });
    const before = queued({ received_at: new Date(edge.lower.getTime() - 1).toISOString() });
    // Two years back: a message that sat in a queue, far before the oldest partition.
    const outside = new Date(Date.UTC(new Date().getUTCFullYear() - 2, 0, 15, 13, 7, 5, 123));
    const old = queued({ received_at: outside.toISOString() });
    expect(parts.some((p) => p.lower <= outside && outside < p.upper)).toBe(false);

    const inserted = await insertEvents(opened.db.prisma, [atEdge, before, old]);
    expect(inserted).toBe(3);

    const oldName = `p${outside.toISOString().slice(0, 10).replace(/-/g, "")}t000000`;
    const beforeName = parts[0]!.name.replace("events_", "");
    const edgeName = edge.name.replace("events_", "");
    expect(await placement(opened.db.migrator.query.bind(opened.db.migrator), "events", [atEdge.id, before.id, old.id])).toEqual({
      [atEdge.id]: `events_${edgeName}`,
      [before.id]: `events_${beforeName}`,
      [old.id]: `events_${oldName}`,
    });
    expect(await placement(opened.db.migrator.query.bind(opened.db.migrator), "deliveries", [atEdge.id, before.id, old.id])).toEqual({
      [atEdge.id]: `deliveries_${edgeName}`,
      [before.id]: `deliveries_${beforeName}`,
      [old.id]: `deliveries_${oldName}`,
    });
    // Made on demand at the width of the newest partition, aligned, and only that one.
    const after = await listPartitions(opened.db.prisma, "events");
    expect(after).toHaveLength(parts.length + 1);
    const made = after.find((p) => p.name === `events_${oldName}`)!;
    expect(made.upper.getTime() - made.lower.getTime()).toBe(DAY_MS);
    expect(made.lower.toISOString()).toBe(`${outside.toISOString().slice(0, 10)}T00:00:00.000Z`);
  });

  test("ensuring twice at once creates each partition once; a new width starts at the highest upper bound", async () => {
    const before = await listPartitions(opened.db.prisma, "events");
    const highest = before.at(-1)!.upper;
    // Ten minutes wide from here on, ten ahead, from the highest bound on: no overlap, no gap.
    const now = new Date(highest.getTime() + 5 * 60_000);
    const layout = { intervalSeconds: 600, ahead: 10 };
    const [a, b] = await Promise.all([ensurePartitions(opened.db.prisma, now, layout), ensurePartitions(opened.db.prisma, now, layout)]);
    expect(a + b).toBeGreaterThan(0);
    expect(Math.min(a, b)).toBe(0);
    const after = await listPartitions(opened.db.prisma, "events");
    const added = after.filter((p) => p.lower >= highest);
    expect(added[0]!.lower.getTime()).toBe(highest.getTime());
    for (let i = 1; i < added.length; i++) expect(added[i]!.lower.getTime()).toBe(added[i - 1]!.upper.getTime());
    for (const p of added) expect(p.upper.getTime() - p.lower.getTime()).toBe(600_000);
    expect(added.at(-1)!.upper.getTime()).toBeGreaterThan(now.getTime() + 10 * 600_000);
  });
});

describe("partitions: idempotency keys across a partition boundary", () => {
  let opened: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    opened = await openTestDatabase();
  });
  afterAll(() => opened.close());

  test("the same key sent again with a received_at in the next partition stays one event; another body is a loser", async () => {
    const parts = await listPartitions(opened.db.prisma, "events");
    const p = parts[1]!;
    const key = "across-boundary";
    const id = idempotentEventId("tp", key);
    const first = queued({ id, idempotency_key: key, received_at: new Date(p.upper.getTime() - 1).toISOString(), payload: { a: 1 } });
    const again = { ...first, received_at: p.upper.toISOString() };
    const other = queued({ id, idempotency_key: key, received_at: new Date(p.upper.getTime() + 1000).toISOString(), payload: { b: 2 } });
    expect(await insertEvents(opened.db.prisma, [first])).toBe(1);
    expect(await insertEvents(opened.db.prisma, [again])).toBe(0);
    expect(await insertEvents(opened.db.prisma, [other])).toBe(0);
    // Two sends of one key in one batch, each with its own received_at: one is stored.
    const k2 = "same-batch";
    const id2 = idempotentEventId("tp", k2);
    const x = queued({ id: id2, idempotency_key: k2, received_at: new Date(p.upper.getTime() - 5).toISOString() });
    const y = { ...x, received_at: new Date(p.upper.getTime() + 5).toISOString() };
    expect(await insertEvents(opened.db.prisma, [x, y])).toBe(1);

    const rows = await opened.db.migrator.query<{ idempotency_key: string; n: number; d: number }>(
      `SELECT e.idempotency_key, count(*)::int AS n, (SELECT count(*)::int FROM deliveries d WHERE d.event_id = e.id) AS d
       FROM events e WHERE e.tenant_id = 'tp' AND e.idempotency_key IS NOT NULL GROUP BY e.idempotency_key, e.id ORDER BY 1`,
    );
    expect(rows).toEqual([
      { idempotency_key: key, n: 1, d: 1 },
      { idempotency_key: k2, n: 1, d: 1 },
    ]);
    // The worker's loser check reads the keys table: the other body is told apart from a duplicate.
    const stored = await storedBodyHashes(opened.db.prisma, [{ tenantId: "tp", key }]);
    expect(stored).toEqual([{ tenant_id: "tp", idempotency_key: key, body_hash: first.body_hash }]);
    expect(stored[0]!.body_hash).not.toBe(other.body_hash);
  });
});

describe("partitions: through the API, and created ahead", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, env: { PARTITIONS_AHEAD: "5", METRICS_PORT: "0" } });
  });
  afterAll(() => h.close());

  test("a key stored in an earlier partition answers 409 to another body and replays the same body with the stored received_at", async () => {
    const key = await h.key("tp-api");
    const k = "stored-yesterday";
    const receivedAt = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - 3_600_000); // yesterday's partition
    const body = { type: "order.created", payload: { n: 1 } };
    // The body hash the API computes for this body: send it once under another key and read it back.
    const probe = await h.request("POST", "/events", { key, body, headers: { "Idempotency-Key": "hash-probe" } });
    expect(probe.status).toBe(202);
    const probed = await h.eventually(async () => {
      const r = await h.sql<{ body_hash: string }>("SELECT body_hash FROM idempotency_keys WHERE tenant_id = 'tp-api' AND idempotency_key = 'hash-probe'");
      return r.length === 1 ? r[0] : undefined;
    });
    const body_hash = probed.body_hash;
    await insertEvents(h.c.db.prisma, [queued({ tenant_id: "tp-api", id: idempotentEventId("tp-api", k), idempotency_key: k, body_hash, received_at: receivedAt.toISOString(), type: "order.created", payload: { n: 1 } })]);
    const conflict = await h.request("POST", "/events", { key, body: { type: "order.created", payload: { n: 2 } }, headers: { "Idempotency-Key": k } });
    expect(conflict.status).toBe(409);
    const replay = await h.request("POST", "/events", { key, body, headers: { "Idempotency-Key": k } });
    expect(replay.status).toBe(202);
    expect(replay.body.id).toBe(idempotentEventId("tp-api", k));
    expect(replay.body.received_at).toBe(receivedAt.toISOString());
    await new Promise((r) => setTimeout(r, 500));
    const rows = await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'tp-api' AND idempotency_key = $1", [k]);
    expect(rows[0]!.n).toBe(1);
  });

  test("the worker at start and every run of the scheduler's job keep PARTITIONS_AHEAD partitions beyond the current one", async () => {
    const coveredUntil = async () => (await listPartitions(h.c.db.prisma, "events")).at(-1)!.upper.getTime();
    // The migration made three days ahead; PARTITIONS_AHEAD=5 asks for five.
    expect(await coveredUntil()).toBeLessThan(Date.now() + 5 * DAY_MS);
    const role = await startWorkerRole(h.c);
    try {
      expect(await coveredUntil()).toBeGreaterThan(Date.now() + 5 * DAY_MS);
    } finally {
      await role.close();
    }
    // Drop the partitions ahead, as if the start had been long ago; the scheduler's next run makes them again.
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    for (const p of await listPartitions(h.c.db.prisma, "events")) {
      if (p.lower.getTime() <= today) continue;
      await h.sql(`DROP TABLE ${p.name}`);
      await h.sql(`DROP TABLE ${p.name.replace("events_", "deliveries_")}`);
    }
    expect(await coveredUntil()).toBe(today + DAY_MS);
    const scheduler = await startScheduler(h.c, { everyMs: 500 });
    try {
      await h.eventually(async () => (await coveredUntil()) > Date.now() + 5 * DAY_MS, 20_000);
      const deliveries = await listPartitions(h.c.db.prisma, "deliveries");
      expect(deliveries.at(-1)!.upper.getTime()).toBe(await coveredUntil());
    } finally {
      await scheduler.close();
    }
  });
});
