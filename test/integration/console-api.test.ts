import { startHarness, type Harness } from "../helpers/harness";
import { seed } from "./inbox-fixtures";
import { deadline } from "../helpers/deadlines";
import { putInState } from "../helpers/factories";
import { BULK_CHANGE_LIMIT } from "../../src/store/events/replay-events";
import { STATS_COUNT_LIMIT } from "../../src/store/events/subscription-stats";

/** The operations the console needs, through the API: list and search, tail, replay, bulk redrive, stats, /key. */
describe("console operations", () => {
  let h: Harness;
  let n = 0;
  const tenant = async (scopes?: Parameters<Harness["key"]>[1]) => {
    const id = `console-${++n}`;
    return { id, key: await h.key(id, scopes) };
  };
  const ids = (body: { data: Array<{ id: string }> }) => body.data.map((e) => e.id);

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("lists newest first, pages by cursor, and filters by status, type, tag, time and payload text", async () => {
    const t = await tenant();
    const at = (s: number) => new Date(Date.parse("2026-03-01T00:00:00Z") + s * 1000);
    const made = await seed(h, t.id, [
      { type: "order.created", tags: ["eu"], payload: { customer: "Ada" }, receivedAt: at(1) },
      { type: "order.paid", payload: { customer: "Grace" }, receivedAt: at(2) },
      { type: "order.created", tags: ["us"], payload: { customer: "ADA lovelace" }, receivedAt: at(3) },
      { type: "order.created", payload: { note: "100%_done" }, receivedAt: at(4) },
    ]);
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now() WHERE event_id = $1", [made[1]]);
    const list = (qs: string) => h.request("GET", `/events?${qs}`, { key: t.key });

    const all = await list("");
    expect(all.status).toBe(200);
    expect(ids(all.body)).toEqual([...made].reverse());
    expect(all.body.next_cursor).toBeNull();

    const p1 = await list("limit=3");
    expect(ids(p1.body)).toEqual([made[3], made[2], made[1]]);
    const p2 = await list(`limit=3&cursor=${p1.body.next_cursor}`);
    expect(ids(p2.body)).toEqual([made[0]]);
    expect(p2.body.next_cursor).toBeNull();
    // A cursor belongs to its filters.
    expect((await list(`limit=3&type=order.paid&cursor=${p1.body.next_cursor}`)).body.error.code).toBe("invalid_cursor");

    expect(ids((await list("status=dead")).body)).toEqual([made[1]]);
    expect(ids((await list("type=order.created")).body)).toEqual([made[3], made[2], made[0]]);
    expect(ids((await list("tag=us")).body)).toEqual([made[2]]);
    expect(ids((await list(`since=${at(2).toISOString()}&until=${at(4).toISOString()}`)).body)).toEqual([made[2], made[1]]);
    expect(ids((await list("q=ada")).body)).toEqual([made[2], made[0]]);
    // LIKE's wildcards are plain text.
    expect(ids((await list(`q=${encodeURIComponent("%_")}`)).body)).toEqual([made[3]]);
    expect(ids((await list("q=nobody")).body)).toEqual([]);

    const bad = await list("since=yesterday");
    expect([bad.status, bad.body.error.code]).toEqual([400, "validation_failed"]);
    expect((await list("subscription=nope")).status).toBe(404);
  });

  test("a filter no index serves examines a bounded window and hands on a cursor, and the walk still sees every match", async () => {
    const t = await tenant();
    const made = await seed(h, t.id, Array.from({ length: 2100 }, (_, i) => ({ type: i === 5 || i === 2095 ? "rare" : "common" })));
    const first = await h.request("GET", "/events?type=rare&limit=10", { key: t.key });
    expect(ids(first.body)).toEqual([made[2095]]);
    expect(first.body.next_cursor).not.toBeNull();
    const second = await h.request("GET", `/events?type=rare&limit=10&cursor=${first.body.next_cursor}`, { key: t.key });
    expect(ids(second.body)).toEqual([made[5]]);
    expect(second.body.next_cursor).toBeNull();
  });

  test("the tail answers newer events oldest first, and waits for one", async () => {
    const t = await tenant();
    const made = await seed(h, t.id, 2);
    const first = await h.request("GET", "/events", { key: t.key });
    const tail = first.body.tail_cursor as string;
    expect(ids((await h.request("GET", `/events?after=${tail}`, { key: t.key })).body)).toEqual([]);
    const waiting = h.request("GET", `/events?after=${tail}&wait_seconds=10`, { key: t.key });
    await new Promise((r) => setTimeout(r, 300));
    const more = await seed(h, t.id, 2);
    const woke = await waiting;
    expect(ids(woke.body)).toEqual(more);
    expect(ids((await h.request("GET", `/events?after=${woke.body.tail_cursor}`, { key: t.key })).body)).toEqual([]);
    expect(made).toHaveLength(2);
    expect((await h.request("GET", `/events?after=${tail}&cursor=${tail}`, { key: t.key })).status).toBe(400);
  }, deadline(30000));

  test("replay makes a range's acknowledged and dead deliveries pending again; redrive makes the matching dead ones pending; both count", async () => {
    const t = await tenant();
    const at = (s: number) => new Date(Date.parse("2026-04-01T00:00:00Z") + s * 1000);
    const made = await seed(h, t.id, [1, 2, 3, 4, 5].map((s) => ({ type: s === 4 ? "x" : "y", receivedAt: at(s) })));
    await h.sql("UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now(), delivery_count = 1 WHERE event_id = ANY($1)", [[made[0], made[1]]]);
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now(), delivery_count = 5 WHERE event_id = ANY($1)", [[made[2], made[3]]]);
    const other = await tenant();
    const theirs = await seed(h, other.id, [{ receivedAt: at(2) }]);
    await h.sql("UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now() WHERE event_id = $1", [theirs[0]]);

    const replay = await h.request("POST", "/subscriptions/default/replay", { key: t.key, body: { since: at(2).toISOString(), until: at(4).toISOString() } });
    expect([replay.status, replay.body]).toEqual([200, { replayed: 2, has_more: false }]);
    const status = async (key: string, id: string) => (await h.request("GET", `/events/${id}`, { key })).body;
    expect(await status(t.key, made[1]!)).toMatchObject({ status: "pending", delivery_count: 0, acknowledged_at: null });
    expect(await status(t.key, made[2]!)).toMatchObject({ status: "pending", delivery_count: 0, dead_at: null });
    expect(await status(t.key, made[0]!)).toMatchObject({ status: "acknowledged" });
    expect(await status(other.key, theirs[0]!)).toMatchObject({ status: "acknowledged" });

    const none = await h.request("POST", "/subscriptions/default/redrive", { key: t.key, body: { type: "y" } });
    expect(none.body).toEqual({ redriven: 0, has_more: false, next_cursor: null });
    const redrive = await h.request("POST", "/subscriptions/default/redrive", { key: t.key, body: { type: "x" } });
    expect(redrive.body).toEqual({ redriven: 1, has_more: false, next_cursor: null });
    expect(await status(t.key, made[3]!)).toMatchObject({ status: "pending", delivery_count: 0 });

    const bad = await h.request("POST", "/subscriptions/default/replay", { key: t.key, body: { since: at(4).toISOString(), until: at(2).toISOString() } });
    expect([bad.status, bad.body.error.code]).toEqual([400, "validation_failed"]);
    expect((await h.request("POST", "/subscriptions/nope/replay", { key: t.key, body: { since: at(1).toISOString(), until: at(2).toISOString() } })).status).toBe(404);
    const reader = await h.key(t.id, ["inbox:read"]);
    expect((await h.request("POST", "/subscriptions/default/redrive", { key: reader, body: {} })).status).toBe(403);
  });

  test("bulk redrive with q: the listing's payload search over a bounded scan of dead events, continued by next_cursor", async () => {
    const t = await tenant();
    // 2 100 dead events: the needle in one of the newest 2 000 (LIST_SCAN_LIMIT) and in one past
    // them, and a payload that matches only if % and _ were wildcards.
    const payload = (i: number) => (i === 5 || i === 2095 ? { note: "Needle 100%_x" } : i === 7 ? { note: "needle 100ab" } : { i });
    const made = await seed(h, t.id, Array.from({ length: 2100 }, (_, i) => ({ type: i === 2095 ? "rare" : "common", payload: payload(i) })));
    await putInState(h.c.db.prisma, t.id, made, { status: "dead", at: new Date() });
    const [pendingNeedle] = await seed(h, t.id, [{ payload: { note: "needle 100%_ too" } }]);
    const q = "needle 100%_";
    const redrive = (body: Record<string, unknown>) => h.request("POST", "/subscriptions/default/redrive", { key: t.key, body });
    const status = async (id: string) => (await h.request("GET", `/events/${id}`, { key: t.key })).body;

    // The page the console shows with this search finds what the first call redrives.
    const page = await h.request("GET", `/events?status=dead&q=${encodeURIComponent(q)}`, { key: t.key });
    expect(ids(page.body)).toEqual([made[2095]]);
    expect(page.body.next_cursor).not.toBeNull();

    // Other filters narrow the scan as they narrow the page.
    expect((await redrive({ q, type: "common" })).body).toMatchObject({ redriven: 0, has_more: true });
    const first = await redrive({ q });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ redriven: 1, has_more: true });
    expect(typeof first.body.next_cursor).toBe("string");
    expect(await status(made[2095]!)).toMatchObject({ status: "pending", delivery_count: 0, dead_at: null });
    expect(await status(made[5]!)).toMatchObject({ status: "dead" });

    // A cursor belongs to its body, and only a search has one.
    const other = await redrive({ q: "another search", cursor: first.body.next_cursor });
    expect([other.status, other.body.error.code]).toEqual([400, "invalid_cursor"]);
    const bare = await redrive({ cursor: first.body.next_cursor });
    expect([bare.status, bare.body.error.code]).toEqual([400, "validation_failed"]);

    const second = await redrive({ q, cursor: first.body.next_cursor });
    expect(second.body).toEqual({ redriven: 1, has_more: false, next_cursor: null });
    expect(await status(made[5]!)).toMatchObject({ status: "pending", delivery_count: 0 });
    // Nothing else changed: the wildcard decoy and every other dead event are still dead, the pending one pending.
    expect(await status(made[7]!)).toMatchObject({ status: "dead" });
    expect(await status(pendingNeedle!)).toMatchObject({ status: "pending" });
    const stats = await h.request("GET", "/subscriptions/default/stats", { key: t.key });
    expect(stats.body.counts).toMatchObject({ dead: { count: 2098, exact: true }, pending: { count: 3, exact: true } });
  });

  test("bounded counts past their limits: stats say exact: false past STATS_COUNT_LIMIT, a bulk redrive has_more past BULK_CHANGE_LIMIT", async () => {
    // The real limits (code constants, not configuration): 10 001 dead deliveries pass both, as
    // twice BULK_CHANGE_LIMIT is STATS_COUNT_LIMIT.
    expect(2 * BULK_CHANGE_LIMIT).toBeLessThanOrEqual(STATS_COUNT_LIMIT);
    const t = await tenant();
    const n = STATS_COUNT_LIMIT + 1;
    const stored = Date.now();
    const made = await seed(h, t.id, n);
    const storing = Date.now() - stored;
    expect(await putInState(h.c.db.prisma, t.id, made, { status: "dead", at: new Date() })).toBe(n);
    const stats = async () => (await h.request("GET", "/subscriptions/default/stats", { key: t.key })).body;

    const before = await stats();
    expect(before.count_limit).toBe(STATS_COUNT_LIMIT);
    expect(before.counts).toEqual({
      pending: { count: 0, exact: true },
      delivered: { count: 0, exact: true },
      acknowledged: { count: 0, exact: true },
      dead: { count: STATS_COUNT_LIMIT, exact: false },
    });

    // Each call is timed against storing the 10 001 events in this run (so the machine's load
    // cancels out): changing 5 000 rows costs less than inserting twice as many events with their
    // deliveries. With the new rows not yet in the planner's statistics, one statement joining the
    // locked rows back to deliveries compared every delivery with every locked row: 16 to 30 s a
    // call here, against 2 s of storing (src/store/events/replay-events.ts).
    const slowest = { ms: 0 };
    const redrive = async () => {
      const started = Date.now();
      const r = await h.request("POST", "/subscriptions/default/redrive", { key: t.key, body: {} });
      slowest.ms = Math.max(slowest.ms, Date.now() - started);
      return r;
    };
    expect((await redrive()).body).toEqual({ redriven: BULK_CHANGE_LIMIT, has_more: true, next_cursor: null });
    expect((await stats()).counts).toMatchObject({ pending: { count: BULK_CHANGE_LIMIT, exact: true }, dead: { count: n - BULK_CHANGE_LIMIT, exact: true } });
    let left = n - BULK_CHANGE_LIMIT;
    while (left > BULK_CHANGE_LIMIT) {
      expect((await redrive()).body).toEqual({ redriven: BULK_CHANGE_LIMIT, has_more: true, next_cursor: null });
      left -= BULK_CHANGE_LIMIT;
    }
    expect((await redrive()).body).toEqual({ redriven: left, has_more: false, next_cursor: null });
    expect((await stats()).counts).toMatchObject({ pending: { count: STATS_COUNT_LIMIT, exact: false }, dead: { count: 0, exact: true } });
    expect(slowest.ms).toBeLessThan(storing);
  }, deadline(120000));

  test("stats: bounded counts per status, oldest pending age and the last hour in buckets; tenant-isolated", async () => {
    const t = await tenant();
    const now = Date.now();
    const made = await seed(h, t.id, [{ receivedAt: new Date(now - 50 * 60_000) }, { receivedAt: new Date(now - 20 * 60_000) }, { receivedAt: new Date(now - 1000) }]);
    await h.sql("UPDATE deliveries SET status = 'dead', dead_at = now() WHERE event_id = $1", [made[2]]);
    const s = await h.request("GET", "/subscriptions/default/stats", { key: t.key });
    expect(s.status).toBe(200);
    expect(s.body.counts).toEqual({ pending: { count: 2, exact: true }, delivered: { count: 0, exact: true }, acknowledged: { count: 0, exact: true }, dead: { count: 1, exact: true } });
    expect(s.body.oldest_pending_age_seconds).toBeGreaterThanOrEqual(50 * 60 - 5);
    expect(s.body.buckets.length).toBe(12);
    expect(s.body.buckets.reduce((a: number, b: { received: number }) => a + b.received, 0)).toBe(3);
    expect(s.body.buckets.reduce((a: number, b: { backlog: number }) => a + b.backlog, 0)).toBe(2);
    const other = await tenant();
    const theirs = await h.request("GET", "/subscriptions/default/stats", { key: other.key });
    expect(theirs.status === 404 || theirs.body.counts.pending.count === 0).toBe(true);
  });

  test("GET /key names the key's scopes; a wrong key is 401", async () => {
    const t = await tenant(["inbox:read"]);
    const me = await h.request("GET", "/key", { key: t.key });
    expect(me.body.scopes).toEqual(["inbox:read"]);
    expect((await h.request("GET", "/key", { key: "trg_live_wrong" })).status).toBe(401);
  });

  test("GET /console is the page with a strict CSP, its assets are hashed and cached immutably", async () => {
    const page = await fetch(`${h.url}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe");
    const html = await page.text();
    expect(html).not.toMatch(/<script>[^<]/);
    const js = /src="(\/console\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    expect(js).toBeDefined();
    const asset = await fetch(`${h.url}${js}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect((await fetch(`${h.url}/console/assets/nope.js`)).status).toBe(404);
  });

  test("the console's page is static, beside the route table: HEAD, OPTIONS and 405 like the table's paths, absent from /openapi.json", async () => {
    const head = await fetch(`${h.url}/console`, { method: "HEAD" });
    expect([head.status, head.headers.get("content-security-policy")]).toEqual([200, expect.stringContaining("default-src 'self'")]);
    const options = await fetch(`${h.url}/console`, { method: "OPTIONS" });
    expect([options.status, options.headers.get("allow")]).toEqual([204, "GET, HEAD, OPTIONS"]);
    // Plain fetch: the harness's request checks answers against /openapi.json, which these paths are not in.
    const post = await fetch(`${h.url}/console`, { method: "POST" });
    expect([post.status, ((await post.json()) as { error: { code: string } }).error.code, post.headers.get("allow")]).toEqual([405, "method_not_allowed", "GET, HEAD, OPTIONS"]);
    expect((await fetch(`${h.url}/console/assets/a/b.js`)).status).toBe(404);
    const paths = Object.keys((await h.request("GET", "/openapi.json")).body.paths);
    expect(paths.filter((p) => p.startsWith("/console"))).toEqual([]);
    expect(paths).toEqual(expect.arrayContaining(["/events", "/subscriptions/{name}/replay", "/subscriptions/{name}/redrive", "/subscriptions/{name}/stats", "/key"]));
  });
});
