import type { PrismaClient } from "../../src/generated/prisma/client";
import { insertStoredEvents } from "../helpers/stored-events";
import { connectPostgres, type Database } from "../../src/store/database";
import { expireEvents, type ExpireEventsOptions } from "../../src/jobs/expire-events";
import { onlyOn, openTestDatabase } from "../helpers/harness";
import { deadline } from "../helpers/deadlines";

const HOUR = 3600;
const DAY = 86_400;
/** A fixed clock: every timestamp below is relative to it, so the test never depends on the wall clock. */
const NOW = new Date("2030-06-01T12:00:00.000Z");
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000);

type Status = "pending" | "delivered" | "acknowledged" | "dead";

describe("expireEvents (real database)", () => {
  let opened: Awaited<ReturnType<typeof openTestDatabase>>;
  let db: Database;

  beforeEach(async () => {
    opened = await openTestDatabase({ poolSize: 3 });
    db = opened.db;
  });
  afterEach(async () => {
    await opened.close();
  });

  /** Inserts `count` rows of one status with the given timestamps; ids carry `tag` so tests can find them. */
  async function seed(tag: string, count: number, row: { tenant?: string; status: Status; receivedAt: Date; acknowledgedAt?: Date; deadAt?: Date }) {
    await insertStoredEvents(
      db.migrator,
      `SELECT $1 || '_' || g AS id, $2::text AS tenant_id, 'test.seeded' AS type, '{}'::jsonb AS payload, repeat('0', 64) AS body_hash, $3::event_status AS status,
              $4::timestamptz AS received_at, $5::timestamptz AS acknowledged_at, $6::timestamptz AS dead_at
       FROM generate_series(1, $7::int) AS g`,
      [tag, row.tenant ?? "tenant-a", row.status, row.receivedAt.toISOString(), row.acknowledgedAt?.toISOString() ?? null, row.deadAt?.toISOString() ?? null, count],
    );
  }

  async function remaining(): Promise<Record<string, number>> {
    const rows = await db.migrator.query<{ tag: string; n: string }>(
      "SELECT split_part(id, '_', 1) AS tag, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
    );
    return Object.fromEntries(rows.map((r) => [r.tag, Number(r.n)]));
  }

  const base: ExpireEventsOptions = {
    now: NOW,
    batchSize: 1000,
    acknowledgedRetentionSeconds: 7 * DAY,
    deadRetentionSeconds: 14 * DAY,
    timeBudgetMs: 60_000,
  };

  /** One set of rows covering every status on both sides of each cutoff. */
  async function seedMix() {
    await seed("ackold", 5, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    await seed("ackfresh", 4, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(6 * DAY) });
    await seed("deadold", 3, { status: "dead", receivedAt: ago(60 * DAY), deadAt: ago(15 * DAY) });
    // Acknowledged 10 days ago is past the ack window but inside the dead window: a dead row that old stays.
    await seed("deadfresh", 2, { status: "dead", receivedAt: ago(60 * DAY), deadAt: ago(10 * DAY) });
    await seed("pendold", 6, { status: "pending", receivedAt: ago(365 * DAY) });
    await seed("pendnew", 2, { status: "pending", receivedAt: ago(HOUR) });
    await seed("delivold", 7, { status: "delivered", receivedAt: ago(365 * DAY) });
    await seed("delivnew", 1, { status: "delivered", receivedAt: ago(HOUR) });
  }

  test("deletes acknowledged and dead rows past retention and keeps fresh ones and every pending/delivered row", async () => {
    await seedMix();
    const result = await expireEvents({ prisma: db.prisma }, base);
    expect(result).toMatchObject({ acknowledged: 5, dead: 3, stale: 0, complete: true });
    expect(await remaining()).toEqual({ ackfresh: 4, deadfresh: 2, pendold: 6, pendnew: 2, delivold: 7, delivnew: 1 });

    // A second run finds nothing more to do.
    expect(await expireEvents({ prisma: db.prisma }, base)).toMatchObject({ acknowledged: 0, dead: 0, stale: 0, batches: 0, complete: true });
  });

  test("the cutoff is exclusive and computed from the `now` passed in, not the database clock", async () => {
    // Received 30 days ago: in a partition a live row holds past its time, the ones expiry clears row by row.
    await seed("edge", 1, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(7 * DAY) });
    await seed("past", 1, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(7 * DAY + 1) });
    expect((await expireEvents({ prisma: db.prisma }, base)).acknowledged).toBe(1);
    expect(await remaining()).toEqual({ edge: 1 });
    // Move the clock one second on: the edge row is now past retention.
    const later = await expireEvents({ prisma: db.prisma }, { ...base, now: new Date(NOW.getTime() + 1000) });
    expect(later.acknowledged).toBe(1);
    expect(await remaining()).toEqual({});
  });

  test("acknowledged and dead rows past retention are left to the partition drop unless received before now - max(retention) - one partition", async () => {
    // max(7, 14) days + one day of partition: rows received 15 days ago or later go with their partition.
    await seed("recent", 3, { status: "acknowledged", receivedAt: ago(15 * DAY - 60), acknowledgedAt: ago(8 * DAY) });
    await seed("recentdead", 2, { status: "dead", receivedAt: ago(15 * DAY - 60), deadAt: ago(15 * DAY - 60) });
    await seed("held", 4, { status: "acknowledged", receivedAt: ago(15 * DAY + 60), acknowledgedAt: ago(8 * DAY) });
    await seed("helddead", 1, { status: "dead", receivedAt: ago(15 * DAY + 60), deadAt: ago(15 * DAY) });
    const result = await expireEvents({ prisma: db.prisma }, base);
    expect(result).toMatchObject({ acknowledged: 4, dead: 1, complete: true });
    expect(await remaining()).toEqual({ recent: 3, recentdead: 2 });
    // Hour-wide partitions move the bound to 14 days + 1 hour: those rows are held ones now.
    const narrow = await expireEvents({ prisma: db.prisma }, { ...base, partitionIntervalSeconds: HOUR });
    expect(narrow).toMatchObject({ acknowledged: 3, dead: 2 });
    expect(await remaining()).toEqual({});
  });

  test("with maxEventAgeSeconds set, pending and delivered rows older than it go too", async () => {
    await seedMix();
    const result = await expireEvents({ prisma: db.prisma }, { ...base, maxEventAgeSeconds: 30 * DAY });
    expect(result).toMatchObject({ acknowledged: 5, dead: 3, stale: 13, complete: true });
    expect(await remaining()).toEqual({ ackfresh: 4, deadfresh: 2, pendnew: 2, delivnew: 1 });
  });

  test("each statement deletes at most batchSize rows: 35 rows in batches of 10 take 4 batches", async () => {
    await seed("ackold", 35, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    const result = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 10 });
    expect(result).toMatchObject({ acknowledged: 35, dead: 0, stale: 0, batches: 4, complete: true });
    expect(await remaining()).toEqual({});
  });

  test("a spent time budget stops the run early with complete=false; the next runs finish the work", async () => {
    await seed("ackold", 35, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    await seed("deadold", 5, { status: "dead", receivedAt: ago(60 * DAY), deadAt: ago(15 * DAY) });
    // A zero budget still runs one statement per kind, so every kind makes progress on every run.
    const first = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 10, timeBudgetMs: 0 });
    expect(first).toMatchObject({ acknowledged: 10, dead: 5, batches: 2, complete: false });
    expect(await remaining()).toEqual({ ackold: 25 });

    let runs = 1;
    let last = first;
    while (!last.complete) {
      last = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 10, timeBudgetMs: 0 });
      runs++;
      expect(runs).toBeLessThan(10);
    }
    expect(runs).toBe(4); // 10 + 10 + 10 + 5
    expect(await remaining()).toEqual({});
  });

  test("maxDuty rests after each full batch in proportion to the batch's time, inside the run's budget", async () => {
    await seed("ackold", 35, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    // A duty of 0.1% rests ~1000× the batch's time, which spends a 100 ms budget after the first
    // batch; the rest itself stops at the budget instead of running on for seconds.
    const paced = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 10, timeBudgetMs: 100, maxDuty: 0.001 });
    expect(paced).toMatchObject({ acknowledged: 10, batches: 1, complete: false });
    expect(paced.durationMs).toBeLessThan(deadline(1000));
    const rest = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 10, maxDuty: 0.5 });
    expect(rest).toMatchObject({ acknowledged: 25, complete: true });
    expect(await remaining()).toEqual({});
    await expect(expireEvents({ prisma: db.prisma }, { ...base, maxDuty: 0 })).rejects.toThrow(RangeError);
    await expect(expireEvents({ prisma: db.prisma }, { ...base, maxDuty: 1.5 })).rejects.toThrow(RangeError);
  });

  test("rows of every tenant are handled", async () => {
    for (const tenant of ["tenant-a", "tenant-b", "tenant-c"]) {
      await seed(`old${tenant.slice(-1)}`, 4, { tenant, status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
      await seed(`fresh${tenant.slice(-1)}`, 2, { tenant, status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(DAY) });
      await seed(`dead${tenant.slice(-1)}`, 1, { tenant, status: "dead", receivedAt: ago(60 * DAY), deadAt: ago(20 * DAY) });
    }
    const result = await expireEvents({ prisma: db.prisma }, { ...base, batchSize: 5 });
    expect(result).toMatchObject({ acknowledged: 12, dead: 3, complete: true });
    expect(await remaining()).toEqual({ fresha: 2, freshb: 2, freshc: 2 });
  });

  /** Gives every event of `tag` a second delivery, of subscription `name`, in the given state. */
  async function secondDelivery(tag: string, name: string, row: { status: Status; acknowledgedAt?: Date }) {
    await db.migrator.query(
      `WITH s AS (INSERT INTO subscriptions (tenant_id, name) VALUES ('tenant-a', $2) ON CONFLICT (tenant_id, name) WHERE deleted_at IS NULL DO UPDATE SET name = EXCLUDED.name RETURNING id)
       INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, received_at, status, acknowledged_at)
       SELECT s.id, d.event_id, d.tenant_id, d.type, d.received_at, $3::event_status, $4::timestamptz
       FROM deliveries d, s WHERE d.event_id LIKE $1 || '\\_%'`,
      [tag, name, row.status, row.acknowledgedAt?.toISOString() ?? null],
    );
  }

  async function deliveriesLeft(): Promise<number> {
    const [row] = await db.migrator.query<{ n: string }>("SELECT count(*) AS n FROM deliveries");
    return Number(row!.n);
  }

  test("an event stays while another subscription's delivery of it lives, and goes with its last delivery", async () => {
    await seed("two", 4, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    await secondDelivery("two", "audit", { status: "pending" });
    const first = await expireEvents({ prisma: db.prisma }, base);
    expect(first).toMatchObject({ acknowledged: 4, events: 0, complete: true });
    expect(await remaining()).toEqual({ two: 4 });
    expect(await deliveriesLeft()).toBe(4);

    await db.migrator.query("UPDATE deliveries SET status = 'acknowledged', acknowledged_at = $1::timestamptz", [ago(8 * DAY).toISOString()]);
    const second = await expireEvents({ prisma: db.prisma }, base);
    expect(second).toMatchObject({ acknowledged: 4, events: 4, complete: true });
    expect(await remaining()).toEqual({});
    expect(await deliveriesLeft()).toBe(0);
  });

  test("concurrent runs that delete different deliveries of the same events leave no event behind", async () => {
    // Every event has two expired deliveries, next to each other in acknowledged order (event n's
    // at 2n and 2n + 1 ms), so runs that split the acknowledged index into batches of an odd size
    // each take one delivery of the event at every batch boundary.
    await seed("pair", 300, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(9 * DAY) });
    await secondDelivery("pair", "audit", { status: "acknowledged", acknowledgedAt: ago(9 * DAY) });
    await db.migrator.query(
      `UPDATE deliveries d SET acknowledged_at = $1::timestamptz
         + (2 * split_part(d.event_id, '_', 2)::int + CASE WHEN s.name = 'default' THEN 0 ELSE 1 END) * interval '1 millisecond'
       FROM subscriptions s WHERE s.id = d.subscription_id`,
      [ago(9 * DAY).toISOString()],
    );
    const runs = await Promise.all([1, 2, 3].map(() => expireEvents({ prisma: db.prisma }, { ...base, batchSize: 7 })));
    expect(runs.reduce((n, r) => n + r.acknowledged, 0)).toBe(600);
    expect(runs.reduce((n, r) => n + r.events, 0)).toBe(300);
    expect(await remaining()).toEqual({});
    expect(await deliveriesLeft()).toBe(0);
  });

  onlyOn("postgres", "SKIP LOCKED needs a second connection holding the lock").test("a row locked by another transaction is skipped, not waited on, and expires on a later run", async () => {
    await seed("ackold", 3, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    // Hold a row lock the way a concurrent ack or lease would.
    const holder = connectPostgres(opened.url!, { poolSize: 1 });
    try {
      await holder.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT event_id FROM deliveries WHERE event_id = 'ackold_1' FOR UPDATE`;
        const result = await expireEvents({ prisma: db.prisma }, base);
        expect(result.acknowledged).toBe(2);
      });
    } finally {
      await holder.close();
    }
    expect(await remaining()).toEqual({ ackold: 1 });
    expect((await expireEvents({ prisma: db.prisma }, base)).acknowledged).toBe(1);
  });

  onlyOn("postgres", "plan test: reads the Postgres server's query plans").test("each delete reads the partial index of its status instead of scanning the table", async () => {
    await seed("pend", 20_000, { status: "pending", receivedAt: ago(HOUR) });
    await seed("ackold", 500, { status: "acknowledged", receivedAt: ago(30 * DAY), acknowledgedAt: ago(8 * DAY) });
    await seed("deadold", 500, { status: "dead", receivedAt: ago(30 * DAY), deadAt: ago(20 * DAY) });
    await db.migrator.query("ANALYZE events");
    await db.migrator.query("ANALYZE deliveries");
    // Capture the exact statements the job sends, then EXPLAIN them (EXPLAIN without ANALYZE deletes nothing).
    const captured: Array<{ sql: string; params: unknown[] }> = [];
    const spy = {
      $queryRaw: async (statement: { text: string; values: unknown[] }) => {
        captured.push({ sql: statement.text, params: statement.values });
        return [{ deliveries: 0, events: 0 }];
      },
      $executeRaw: async () => 0, // the batch's advisory lock
      $transaction: async (fn: (tx: unknown) => Promise<unknown>) => fn(spy),
    } as unknown as PrismaClient;
    await expireEvents({ prisma: spy }, { ...base, maxEventAgeSeconds: 90 * DAY });
    expect(captured).toHaveLength(3);
    // The stale kind's statement has no ORDER BY (see deleteExpiredBatch); its plan is not pinned here.
    // Each partition's copy of the partitioned index (deliveries_<partition>_acknowledged_at_idx).
    const indexes = [/deliveries_p\w+_acknowledged_at_idx/, /deliveries_p\w+_dead_at_idx/];
    // The partition of the 20 000 pending rows, where leases and acks work.
    const hot = (await db.migrator.query<{ part: string }>("SELECT DISTINCT tableoid::regclass::text AS part FROM deliveries WHERE event_id LIKE 'pend\\_%'"))
      .map((r) => r.part.replace(/^.*\./, ""));
    expect(hot).toHaveLength(1);
    for (const [i, { sql, params }] of captured.slice(0, 2).entries()) {
      const plan = await db.migrator.query<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, params.map((p) => (p instanceof Date ? p.toISOString() : p)));
      const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
      expect(text).toMatch(indexes[i]!);
      // Partitioned: the due rows come from the kind's partial index, and the statement never
      // reaches the hot partition (pruned by its received_at bound, in the pick and in the
      // deletes by key alike). Older partitions are the held ones it exists to clear.
      expect({ statement: i, readsHot: text.includes(hot[0]!.replace("deliveries_", "")) }).toEqual({ statement: i, readsHot: false });
      expect(text).not.toMatch(/Seq Scan on (events|deliveries) /);
    }
  });
});
