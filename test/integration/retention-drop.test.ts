import { createHash } from "node:crypto";
import type { QueuedEvent } from "../../src/domain/queued-event";
import { idempotentEventId, newEventId } from "../../src/domain/ids";
import { insertEvents } from "../../src/store/events/insert-events";
import { findStoredKey } from "../../src/store/events/idempotency-keys";
import { replayEvents } from "../../src/store/events/replay-events";
import { listPartitions } from "../../src/store/partitions";
import { retirePartitions, type RetireOptions } from "../../src/store/retention";
import { startScheduler } from "../../src/roles/scheduler";
import { Client } from "pg";
import { parseDatabaseUrl } from "../../src/store/database";
import { onlyOn, openTestDatabase, startHarness, type Harness } from "../helpers/harness";
import { waitFor } from "../helpers/deadlines";

/**
 * Retention by drop (src/store/retention.ts): a partition pair past its time goes whole once no
 * delivery in it is live; a pending one holds it (it waits, with a gauge), nothing is lost; keys
 * go with their partition; concurrent runs drop once; a row revived after the detach is attached
 * back.
 */

const DAY_MS = 86_400_000;
const body = (n: unknown) => createHash("sha256").update(JSON.stringify(n)).digest("hex");

function queued(receivedAt: Date, over: Partial<QueuedEvent> = {}): QueuedEvent {
  return {
    v: 1,
    id: newEventId(receivedAt.getTime()),
    tenant_id: "tr",
    type: "ret.test",
    source: null,
    tags: [],
    payload: { n: 1 },
    occurred_at: null,
    idempotency_key: null,
    body_hash: body({ n: 1 }),
    received_at: receivedAt.toISOString(),
    ...over,
  } as QueuedEvent;
}

describe("retention by drop (store)", () => {
  let opened: Awaited<ReturnType<typeof openTestDatabase>>;
  const sql = <R = Record<string, unknown>>(text: string, params: unknown[] = []) => opened.db.migrator.query<R>(text, params);
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  // Past their time: a partition goes one width after its upper bound (late rows still find it).
  const twoDaysAgo = new Date(today - 2 * DAY_MS + 3_600_000);
  const threeDaysAgo = new Date(today - 3 * DAY_MS + 3_600_000);
  const opts = (): RetireOptions => ({ now: new Date(), acknowledgedRetentionSeconds: 60, deadRetentionSeconds: 60 });
  const ackAll = (ids: string[], agoMs: number) =>
    sql(`UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now() - $2::int * interval '1 millisecond' WHERE event_id = ANY($1::text[])`, [ids, agoMs]);
  const names = async () => (await listPartitions(opened.db.prisma, "events")).map((p) => p.name);
  const suffixOf = (d: Date) => `p${new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS).toISOString().slice(0, 10).replace(/-/g, "")}t000000`;

  beforeEach(async () => {
    opened = await openTestDatabase({ poolSize: 4 });
  });
  afterEach(() => opened.close());

  test("a pending delivery holds its partition: it waits, nothing is lost; once acknowledged past retention it goes", async () => {
    const pending = queued(twoDaysAgo);
    const acked = queued(twoDaysAgo);
    const old = queued(threeDaysAgo);
    expect(await insertEvents(opened.db.prisma, [pending, acked, old])).toBe(3);
    await ackAll([acked.id, old.id], 120_000);

    const first = await retirePartitions(opened.db, opts());
    expect(first.skipped).toBe(false);
    // Two days ago: nothing live, dropped. Yesterday: held by the pending delivery.
    expect(first.retired).toEqual([suffixOf(threeDaysAgo)]);
    expect(first.waiting.map((p) => p.name)).toEqual([`deliveries_${suffixOf(twoDaysAgo)}`]);
    expect(await names()).not.toContain(`events_${suffixOf(threeDaysAgo)}`);
    const left = await sql<{ id: string }>(`SELECT id FROM events WHERE tenant_id = 'tr' ORDER BY id`);
    expect(left.map((r) => r.id).sort()).toEqual([pending.id, acked.id].sort());
    const tables = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('events_${suffixOf(threeDaysAgo)}', 'deliveries_${suffixOf(threeDaysAgo)}')`);
    expect(tables[0]!.n).toBe(0);

    // Acknowledged, but within retention: still held.
    await ackAll([pending.id], 1000);
    const second = await retirePartitions(opened.db, opts());
    expect(second.retired).toEqual([]);
    expect(second.waiting).toHaveLength(1);
    // Past retention: the pair goes.
    await ackAll([pending.id], 120_000);
    const third = await retirePartitions(opened.db, opts());
    expect(third.retired).toEqual([suffixOf(twoDaysAgo)]);
    expect(third.waiting).toEqual([]);
    expect(await sql(`SELECT id FROM events WHERE tenant_id = 'tr'`)).toEqual([]);
    // The current partition and the ones ahead are never candidates.
    expect((await names()).length).toBeGreaterThanOrEqual(4);
  });

  test("a dead delivery within DEAD_RETENTION_SECONDS holds its partition; MAX_EVENT_AGE_SECONDS lets a pending one go with it", async () => {
    const dead = queued(threeDaysAgo);
    const pending = queued(twoDaysAgo);
    await insertEvents(opened.db.prisma, [dead, pending]);
    await sql(`UPDATE deliveries SET status = 'dead', dead_at = now() - interval '10 seconds' WHERE event_id = $1`, [dead.id]);
    const held = await retirePartitions(opened.db, opts());
    expect(held.retired).toEqual([]);
    expect(held.waiting).toHaveLength(2);
    // A max event age shorter than the partitions' age: their pending rows expire with them (dead ones keep their own retention).
    const capped = await retirePartitions(opened.db, { ...opts(), maxEventAgeSeconds: 3600 });
    expect(capped.retired).toEqual([suffixOf(twoDaysAgo)]);
    expect(capped.waiting.map((p) => p.name)).toEqual([`deliveries_${suffixOf(threeDaysAgo)}`]);
  });

  test("an idempotency key goes with its partition: the key is free again after the drop, not before", async () => {
    const key = "drop-me";
    const first = queued(twoDaysAgo, { id: idempotentEventId("tr", key), idempotency_key: key, payload: { a: 1 }, body_hash: body({ a: 1 }) });
    expect(await insertEvents(opened.db.prisma, [first])).toBe(1);
    await ackAll([first.id], 10_000);
    // Within retention: held, and the key still answers the stored event.
    expect((await retirePartitions(opened.db, opts())).retired).toEqual([]);
    expect(await findStoredKey(opened.db.prisma, "tr", key)).toEqual({ body_hash: body({ a: 1 }), received_at: first.received_at });
    expect(await insertEvents(opened.db.prisma, [{ ...first, received_at: new Date().toISOString() }])).toBe(0);
    await ackAll([first.id], 120_000);
    const r = await retirePartitions(opened.db, opts());
    expect(r.retired).toEqual([suffixOf(twoDaysAgo)]);
    expect(r.keysDeleted).toBe(1);
    expect(await findStoredKey(opened.db.prisma, "tr", key)).toBeNull();
    // Sent again: a new event under the same key.
    const again = { ...first, payload: { b: 2 }, body_hash: body({ b: 2 }), received_at: new Date().toISOString() };
    expect(await insertEvents(opened.db.prisma, [again])).toBe(1);
    expect(await findStoredKey(opened.db.prisma, "tr", key)).toEqual({ body_hash: body({ b: 2 }), received_at: again.received_at });
  });

  test("two runs at once: the pair is dropped once, no error, nothing live lost", async () => {
    const acked = [queued(threeDaysAgo), queued(threeDaysAgo)];
    const pending = queued(twoDaysAgo);
    const current = queued(new Date());
    await insertEvents(opened.db.prisma, [...acked, pending, current]);
    await ackAll(acked.map((e) => e.id), 120_000);
    const [a, b] = await Promise.all([retirePartitions(opened.db, opts()), retirePartitions(opened.db, opts())]);
    expect([...a.retired, ...b.retired]).toEqual([suffixOf(threeDaysAgo)]);
    expect([a.skipped, b.skipped].filter(Boolean).length).toBeLessThanOrEqual(1);
    const left = await sql<{ id: string; status: string }>(`SELECT event_id AS id, status::text AS status FROM deliveries WHERE tenant_id = 'tr' ORDER BY event_id`);
    expect(left).toEqual([{ id: pending.id, status: "pending" }, { id: current.id, status: "pending" }].sort((x, y) => (x.id < y.id ? -1 : 1)));
  });

  test("a replay that revives a row after the detach: the pair is attached back, the row delivered, nothing dropped", async () => {
    const acked = queued(threeDaysAgo);
    await insertEvents(opened.db.prisma, [acked]);
    await ackAll([acked.id], 120_000);
    const suffix = suffixOf(threeDaysAgo);
    const { lower, upper } = (await listPartitions(opened.db.prisma, "events")).find((p) => p.name === `events_${suffix}`)!;
    // The run's check found nothing live and it detached the pair; before it settles, a replay
    // (committed before the detach took the partition away) made the delivery pending again. The
    // run is cut here, as if stopped; the next run meets the detached pair.
    await sql(`SELECT triggers_detach_partition('deliveries', $1)`, [suffix]);
    await sql(`SELECT triggers_detach_partition('events', $1)`, [suffix]);
    await sql(`UPDATE deliveries_${suffix} SET status = 'pending', acknowledged_at = NULL WHERE event_id = $1`, [acked.id]);
    const r = await retirePartitions(opened.db, opts());
    expect(r.retired).not.toContain(suffix);
    expect(r.reattached).toEqual([suffix]);
    const back = (await listPartitions(opened.db.prisma, "events")).find((p) => p.name === `events_${suffix}`)!;
    expect([back.lower.getTime(), back.upper.getTime()]).toEqual([lower.getTime(), upper.getTime()]);
    expect(await sql(`SELECT event_id, status::text AS status FROM deliveries WHERE event_id = $1`, [acked.id])).toEqual([{ event_id: acked.id, status: "pending" }]);
    expect(await sql(`SELECT id FROM events WHERE id = $1`, [acked.id])).toEqual([{ id: acked.id }]);
    // And a replay through the store before the check: the pair waits.
    await ackAll([acked.id], 120_000);
    const sub = (await sql<{ id: number }>(`SELECT id FROM subscriptions WHERE tenant_id = 'tr' AND name = 'default'`))[0]!.id;
    expect((await replayEvents(opened.db.prisma, "tr", sub, new Date(0), new Date())).changed).toBe(1);
    const again = await retirePartitions(opened.db, opts());
    expect(again.retired).not.toContain(suffix);
    expect(again.waiting.map((p) => p.name)).toEqual([`deliveries_${suffix}`]);
  });

  onlyOn("postgres", "a detach left pending needs a second session holding the parent, and PGlite has one session").test(
    "a concurrent detach interrupted half-way (DETACH PENDING) is finalized by the next run, then settled",
    async () => {
      const acked = queued(threeDaysAgo);
      await insertEvents(opened.db.prisma, [acked]);
      await ackAll([acked.id], 120_000);
      const suffix = suffixOf(threeDaysAgo);
      const { connectionString, schema } = parseDatabaseUrl(opened.url!);
      const reader = new Client({ connectionString, options: `-c search_path="${schema}"` });
      const detacher = new Client({ connectionString, options: `-c search_path="${schema}"` });
      await reader.connect();
      await detacher.connect();
      try {
        // A transaction that has read deliveries keeps the detach's second phase waiting; the
        // detaching session is then cancelled, as a run stopped by its deadline would be.
        await reader.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
        await reader.query("SELECT count(*) FROM deliveries");
        const pid = (await detacher.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
        const detaching = detacher.query(`ALTER TABLE deliveries DETACH PARTITION deliveries_${suffix} CONCURRENTLY`).catch((e: Error) => e);
        await waitFor(async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhdetachpending`))[0]!.n === 1, { timeoutMs: 10_000, what: "the detach to be pending" });
        await sql(`SELECT pg_cancel_backend($1)`, [pid]);
        expect(String(await detaching)).toMatch(/cancel/i);
        await reader.query("COMMIT");
      } finally {
        await reader.end();
        await detacher.end();
      }
      expect((await listPartitions(opened.db.prisma, "deliveries")).find((p) => p.name === `deliveries_${suffix}`)?.detachPending).toBe(true);
      const r = await retirePartitions(opened.db, opts());
      expect(r.retired).toContain(suffix);
      expect(await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('deliveries_${suffix}', 'events_${suffix}')`)).toEqual([{ n: 0 }]);
      expect(await sql(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhdetachpending`)).toEqual([{ n: 0 }]);
    },
  );
});

describe("retention by drop (scheduler job and gauges)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { ACK_RETENTION_SECONDS: "60", DEAD_RETENTION_SECONDS: "60" } });
  });
  afterAll(() => h.close());

  test("the job drops a pair past retention, and a pair held by a pending delivery waits with the gauges set", async () => {
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const held = queued(new Date(today - 2 * DAY_MS + 60_000), { tenant_id: "trs" });
    const gone = queued(new Date(today - 3 * DAY_MS + 60_000), { tenant_id: "trs" });
    await insertEvents(h.c.db.prisma, [held, gone]);
    await h.sql(`UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now() - interval '5 minutes' WHERE event_id = $1`, [gone.id]);
    const gauge = async (g: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await g.get()).values[0]?.value ?? 0;
    const scheduler = await startScheduler(h.c, { everyMs: 300, firstRunDelayMs: 10 });
    try {
      await h.eventually(async () => (await gauge(h.c.metrics.partitionsWaiting)) === 1 && (await gauge(h.c.metrics.partitionsRetired)) >= 1, 20_000);
      expect(await gauge(h.c.metrics.partitionsWaitingOldest)).toBeGreaterThan(0);
      expect(await h.sql(`SELECT id FROM events WHERE tenant_id = 'trs'`)).toEqual([{ id: held.id }]);
      // Acknowledged past retention: the next run drops it and nothing waits.
      await h.sql(`UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now() - interval '5 minutes' WHERE event_id = $1`, [held.id]);
      await h.eventually(async () => (await gauge(h.c.metrics.partitionsWaiting)) === 0, 20_000);
      expect(await gauge(h.c.metrics.partitionsWaitingOldest)).toBe(0);
      expect(await h.sql(`SELECT id FROM events WHERE tenant_id = 'trs'`)).toEqual([]);
    } finally {
      await scheduler.close();
    }
  });
});
