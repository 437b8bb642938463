import type { Prisma, PrismaClient } from "../../src/generated/prisma/client";
import { leaseEvents } from "../../src/store/events/lease-events";
import { peekEvents } from "../../src/store/events/peek-events";
import { resolveSubscription } from "../../src/store/subscriptions";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed } from "./inbox-fixtures";
import { deadline } from "../helpers/deadlines";
import { putInState } from "../helpers/factories";

describe("GET /inbox?mode=peek", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `peek-${++n}`;
    return { id, key: await h.key(id) };
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  /** Follows next_cursor to the end; returns every id in page order. */
  const walk = async (key: string, qs: string, between?: () => Promise<unknown>) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: { data: Array<{ id: string }>; next_cursor: string | null } } = await h.request(
        "GET",
        `/inbox?mode=peek&${qs}${cursor ? `&cursor=${cursor}` : ""}`,
        { key },
      );
      expect(r.status).toBe(200);
      seen.push(...idsOf(r.body));
      cursor = r.body.next_cursor;
      pages++;
      if (between) await between();
    } while (cursor !== null);
    return { seen, pages };
  };

  test("leases nothing and lists every status in (received_at, id) order", async () => {
    const t = await tenant();
    const ids = await seed(h, t.id, 6);
    await h.request("GET", "/inbox?limit=3", { key: t.key }); // 0,1 delivered; 2 delivered, then acknowledged
    expect((await h.request("POST", "/events/ack", { key: t.key, body: { ids: [ids[2]] } })).body.acknowledged).toEqual([ids[2]]);
    await putInState(h.c.db.prisma, t.id, [ids[3]!], { status: "dead", at: new Date() });
    const before = await h.sql("SELECT * FROM deliveries WHERE tenant_id = $1 ORDER BY event_id", [t.id]);
    const all = await h.request("GET", "/inbox?mode=peek", { key: t.key });
    expect(all.body).toEqual({ data: expect.any(Array), next_cursor: null });
    expect(idsOf(all.body)).toEqual(ids);
    expect(all.body.data.map((e: { status: string }) => e.status)).toEqual(["delivered", "delivered", "acknowledged", "dead", "pending", "pending"]);
    expect(await h.sql("SELECT * FROM deliveries WHERE tenant_id = $1 ORDER BY event_id", [t.id])).toEqual(before);
    const statusIds = async (s: string) => idsOf((await h.request("GET", `/inbox?mode=peek&status=${s}`, { key: t.key })).body);
    expect(await statusIds("pending")).toEqual([ids[4], ids[5]]);
    expect(await statusIds("delivered")).toEqual([ids[0], ids[1]]);
    expect(await statusIds("acknowledged")).toEqual([ids[2]]);
    expect(await statusIds("dead")).toEqual([ids[3]]);
  });

  test("pages with an opaque cursor; a full walk sees every event exactly once", async () => {
    const t = await tenant();
    const ids = await seed(h, t.id, 250);
    const { seen, pages } = await walk(t.key, "limit=40");
    expect(seen).toEqual(ids);
    expect(pages).toBe(7);
    // Exactly a multiple of the limit: the last page is full and the one after it is empty.
    const exact = await walk(t.key, "limit=50");
    expect(exact.seen).toEqual(ids);
  });

  test("a walk under concurrent inserts sees each pre-existing event once, in order", async () => {
    const t = await tenant();
    const ids = await seed(h, t.id, 1000);
    // New events keep arriving while the walk runs, both later and (as a late-stored row can be)
    // earlier in received_at than the current position.
    let stop = false;
    const added: string[] = [];
    // The inserts are bounded: a walk always reaches the tail, even where inserting outpaces paging
    // (embedded PGlite serves the inserts, the API and this test from one thread).
    const inserter = (async () => {
      for (let round = 0; !stop && round < 40; round++) {
        added.push(...(await seed(h, t.id, 20)));
        added.push(...(await seed(h, t.id, [{ receivedAt: new Date(Date.parse("2025-06-01T00:00:00.000Z") + added.length) }])));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const { seen } = await walk(t.key, "limit=37", () => new Promise((r) => setTimeout(r, 2)));
    stop = true;
    await inserter;
    expect(added.length).toBeGreaterThan(0);
    expect(new Set(seen).size).toBe(seen.length); // nothing twice
    const original = new Set(ids);
    expect(seen.filter((id) => original.has(id))).toEqual(ids); // every original, once, in order
  });

  test("the cursor keeps the filters; a tampered or foreign cursor is 400 invalid_cursor", async () => {
    const t = await tenant();
    await seed(h, t.id, Array.from({ length: 30 }, (_, i) => ({ type: i % 2 ? "odd" : "even" })));
    const page = await h.request("GET", "/inbox?mode=peek&type=odd&limit=5", { key: t.key });
    const cursor = page.body.next_cursor as string;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const { seen } = await walk(t.key, "type=odd&limit=5");
    expect(seen).toHaveLength(15);

    const decoded = JSON.parse(Buffer.from(cursor, "base64url").toString());
    const reencode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const bad = [
      "garbage!",
      "Zm9v", // "foo"
      cursor.slice(0, -3),
      reencode({ ...decoded, i: "evt_x" }),
      reencode({ ...decoded, r: "2026-01-01" }),
      reencode({ ...decoded, v: 2 }),
      reencode([decoded]),
    ];
    for (const c of bad) {
      const r = await h.request("GET", `/inbox?mode=peek&type=odd&limit=5&cursor=${encodeURIComponent(c)}`, { key: t.key });
      expect([c, r.status, r.body.error.code]).toEqual([c, 400, "invalid_cursor"]);
    }
    // The same cursor under other filters would skip or repeat rows: refused.
    const other = await h.request("GET", `/inbox?mode=peek&type=even&cursor=${cursor}`, { key: t.key });
    expect([other.status, other.body.error.code]).toEqual([400, "invalid_cursor"]);
    const otherStatus = await h.request("GET", `/inbox?mode=peek&type=odd&status=pending&cursor=${cursor}`, { key: t.key });
    expect(otherStatus.status).toBe(400);
    // A cursor used by another tenant reveals nothing: it only positions that tenant's own listing.
    const b = await tenant();
    const foreign = await h.request("GET", `/inbox?mode=peek&type=odd&limit=5&cursor=${cursor}`, { key: b.key });
    expect(foreign.body).toEqual({ data: [], next_cursor: null });
  });

  onlyOn("postgres", "plan test: reads the Postgres server's query plans").test("lease and peek statements are served by the inbox indexes", async () => {
    const t = await tenant();
    // A realistic shape: this tenant is one of many, so its rows are a small part of the table.
    await seed(h, t.id, 3000);
    for (let i = 0; i < 15; i++) await seed(h, `peek-other-${i}`, 3000);
    await h.sql("ANALYZE events");
    await h.sql("ANALYZE deliveries");
    const subscriptionId = (await resolveSubscription(h.c.db.prisma, t.id, "default"))!;
    // Capture the exact SQL and parameters the store sends, then EXPLAIN them (EXPLAIN without
    // ANALYZE does not execute the UPDATE).
    const captured: Array<{ sql: string; params: unknown[] }> = [];
    const spy = {
      $queryRaw: async (statement: Prisma.Sql) => {
        captured.push({ sql: statement.text, params: statement.values });
        return [];
      },
    } as unknown as PrismaClient;
    await leaseEvents(spy, { tenantId: t.id, subscriptionId, limit: 100, visibilitySeconds: 30, maxDeliveries: 10, filter: { type: "test.event" } });
    await peekEvents(spy, { tenantId: t.id, subscriptionId, limit: 100 });
    await peekEvents(spy, { tenantId: t.id, subscriptionId, limit: 100, status: "dead", after: { receivedAt: new Date(), id: "evt_00000000000000000000000000" } });
    const plans = await Promise.all(
      captured.map(async ({ sql, params }) =>
        (await h.sql<{ "QUERY PLAN": string }>(`EXPLAIN ${sql}`, params)).map((r) => r["QUERY PLAN"]).join("\n"),
      ),
    );
    // Partitioned: each partition's index stands for its parent index. A sequential scan may only be
    // of a small partition (ANALYZEd above; here the ~40 late rows of 2025-06-01 an earlier test
    // stored), where reading its few pages is the planner's cheapest way; the 48 000 seeded rows'
    // partition is read through the indexes.
    const parents = new Map(
      (await h.sql<{ child: string; parent: string }>(
        `SELECT c.relname AS child, p.relname AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i' AND p.relkind = 'I'`,
      )).map((r) => [r.child, r.parent]),
    );
    const indexes = (plan: string, how: RegExp) => new Set([...plan.matchAll(how)].map((m) => parents.get(m[1]!) ?? m[1]!));
    const scans = /(?:Index Scan using|Index Only Scan using|Bitmap Index Scan on) (\w+)/g;
    expect([...indexes(plans[0]!, scans)].filter((i) => /^deliveries_deliverable(_type)?_idx$/.test(i))).not.toEqual([]);
    for (const plan of plans.slice(1)) expect(indexes(plan, scans)).toContain("deliveries_tenant_status_received_idx");
    for (const plan of plans) {
      expect(plan).not.toMatch(/Seq Scan on (events|deliveries) /);
      const seq = [...plan.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]!);
      const withRows = await h.sql<{ relname: string }>("SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND reltuples >= 1000", [seq]);
      expect(withRows).toEqual([]);
    }
  }, deadline(90_000));
});
