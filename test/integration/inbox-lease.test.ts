import { startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed, sleep } from "./inbox-fixtures";

describe("GET /inbox (lease mode)", () => {
  let h: Harness;
  let n = 0;
  // Every test gets its own tenant, so tests never see each other's events.
  const tenant = async () => {
    const id = `lease-${++n}`;
    return { id, key: await h.key(id) };
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("leases oldest first with lease fields, defaults to 50 and reports has_more", async () => {
    const t = await tenant();
    const ids = await seed(h, t.id, 60);
    const first = await h.request("GET", "/inbox", { key: t.key });
    expect(first.status).toBe(200);
    expect(idsOf(first.body)).toEqual(ids.slice(0, 50));
    expect(first.body.has_more).toBe(true);
    const ev = first.body.data[0];
    expect(ev).toMatchObject({ status: "delivered", delivery_count: 1, lease_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const ttl = Date.parse(ev.lease_expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(25_000); // default visibility 30 s
    expect(ttl).toBeLessThanOrEqual(30_000);
    const second = await h.request("GET", "/inbox?limit=500", { key: t.key });
    expect(idsOf(second.body)).toEqual(ids.slice(50));
    expect(second.body.has_more).toBe(false);
    expect((await h.request("GET", "/inbox", { key: t.key })).body).toEqual({ data: [], has_more: false });
    expect(Number(await h.c.metrics.inboxLeased.get().then((m) => m.values[0]!.value))).toBeGreaterThanOrEqual(60);
  });

  test("an expired lease makes the event deliverable again with a new lease", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const first = await h.request("GET", "/inbox?visibility_timeout=1", { key: t.key });
    expect(idsOf(first.body)).toEqual([id]);
    expect((await h.request("GET", "/inbox", { key: t.key })).body.data).toEqual([]);
    await sleep(1100);
    const again = await h.request("GET", "/inbox?visibility_timeout=30", { key: t.key });
    expect(idsOf(again.body)).toEqual([id]);
    expect(again.body.data[0].delivery_count).toBe(2);
    expect(again.body.data[0].lease_id).not.toBe(first.body.data[0].lease_id);

    // The first consumer's lease is stale: its lease-bound ack is refused, the current one succeeds.
    const stale = await h.request("POST", `/events/${id}/ack`, { key: t.key, body: { lease_id: first.body.data[0].lease_id } });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("lease_expired");
    const ok = await h.request("POST", `/events/${id}/ack`, { key: t.key, body: { lease_id: again.body.data[0].lease_id } });
    expect(ok.status).toBe(200);
    // Once acknowledged, the holder's repeat with its lease is still the idempotent 200.
    const repeat = await h.request("POST", `/events/${id}/ack`, { key: t.key, body: { lease_id: again.body.data[0].lease_id } });
    expect(repeat.status).toBe(200);
    expect(repeat.body.acknowledged_at).toBe(ok.body.acknowledged_at);
  });

  test("8 concurrent consumers over 5 000 events receive disjoint sets that together cover all", async () => {
    const t = await tenant();
    const ids = await seed(h, t.id, 5000);
    const consume = async () => {
      const got: string[] = [];
      for (;;) {
        const r = await h.request("GET", `/inbox?limit=${50 + Math.floor(Math.random() * 100)}&visibility_timeout=600`, { key: t.key });
        expect(r.status).toBe(200);
        if (r.body.data.length === 0) return got;
        got.push(...idsOf(r.body));
      }
    };
    const results = await Promise.all(Array.from({ length: 8 }, consume));
    const all = results.flat();
    expect(new Set(all).size).toBe(all.length); // disjoint
    expect([...all].sort()).toEqual([...ids].sort()); // complete
    expect(results.filter((r) => r.length > 0).length).toBeGreaterThan(1);
    const rows = await h.sql<{ status: string; delivery_count: number; n: number }>(
      "SELECT status::text, delivery_count, count(*)::int AS n FROM deliveries WHERE tenant_id = $1 GROUP BY 1, 2",
      [t.id],
    );
    expect(rows).toEqual([{ status: "delivered", delivery_count: 1, n: 5000 }]);
  });

  test("filters type, source, tag, since and until, alone and combined", async () => {
    const t = await tenant();
    const base = Date.parse("2026-03-01T00:00:00.000Z");
    const at = (s: number) => new Date(base + s * 1000);
    const ids = await seed(h, t.id, [
      { type: "order.created", source: "shop", tags: ["eu", "vip"], receivedAt: at(0) },
      { type: "order.created", source: "pos", tags: ["us"], receivedAt: at(10) },
      { type: "order.paid", source: "shop", tags: ["eu"], receivedAt: at(20) },
      { type: "user.created", source: null, tags: [], receivedAt: at(30) },
      { type: "order.created", source: "shop", tags: ["eu"], receivedAt: at(40) },
    ]);
    const peek = async (qs: string) => {
      const r = await h.request("GET", `/inbox?mode=peek&${qs}`, { key: t.key });
      expect(r.status).toBe(200);
      return idsOf(r.body);
    };
    const cases: Array<[string, number[]]> = [
      ["type=order.created", [0, 1, 4]],
      ["source=shop", [0, 2, 4]],
      ["tag=eu", [0, 2, 4]],
      ["tag=eu&tag=vip", [0]],
      [`since=${at(10).toISOString()}`, [1, 2, 3, 4]],
      [`until=${at(30).toISOString()}`, [0, 1, 2]],
      [`since=${at(10).toISOString()}&until=${at(40).toISOString()}`, [1, 2, 3]],
      [`type=order.created&source=shop&tag=eu&since=${at(5).toISOString()}`, [4]],
      ["type=nothing", []],
    ];
    for (const [qs, expected] of cases) expect([qs, await peek(qs)]).toEqual([qs, expected.map((i) => ids[i])]);

    // Lease mode honours the same filters and leases only what matched.
    const leased = await h.request("GET", "/inbox?type=order.created&tag=eu", { key: t.key });
    expect(idsOf(leased.body)).toEqual([ids[0], ids[4]]);
    const bySource = await h.request("GET", `/inbox?source=shop&until=${at(25).toISOString()}`, { key: t.key });
    expect(idsOf(bySource.body)).toEqual([ids[2]]);
    const rest = await h.request("GET", `/inbox?since=${at(0).toISOString()}`, { key: t.key });
    expect(idsOf(rest.body)).toEqual([ids[1], ids[3]]);
  });

  test("has_more is true when more events match beyond the limit, and respects filters", async () => {
    const t = await tenant();
    await seed(h, t.id, [{ type: "a" }, { type: "b" }, { type: "a" }, { type: "b" }]);
    const one = await h.request("GET", "/inbox?type=a&limit=1", { key: t.key });
    expect(one.body.has_more).toBe(true);
    const two = await h.request("GET", "/inbox?type=a&limit=1", { key: t.key });
    expect(two.body.has_more).toBe(false);
    expect((await h.request("GET", "/inbox?type=b&limit=2", { key: t.key })).body.has_more).toBe(false);
  });

  test("bad query parameters answer 400 with field paths", async () => {
    const t = await tenant();
    const cases: Array<[string, string]> = [
      ["limit=0", "limit"],
      ["limit=501", "limit"],
      ["limit=abc", "limit"],
      ["visibility_timeout=abc", "visibility_timeout"],
      ["visibility_timeout=0", "visibility_timeout"],
      ["visibility_timeout=3601", "visibility_timeout"],
      ["wait_seconds=21", "wait_seconds"],
      ["wait_seconds=-1", "wait_seconds"],
      ["wait_seconds=1.5", "wait_seconds"],
      ["mode=peek&wait_seconds=1", "wait_seconds"],
      ["since=yesterday", "since"],
      ["until=2026-13-45", "until"],
      ["mode=other", "mode"],
      ["status=dead", "status"], // status belongs to peek mode
      ["mode=peek&visibility_timeout=5", "visibility_timeout"],
      ["mode=peek&status=gone", "status"],
      ["bogus=1", "bogus"],
    ];
    for (const [qs, path] of cases) {
      const r = await h.request("GET", `/inbox?${qs}`, { key: t.key });
      expect([qs, r.status, r.body.error.code]).toEqual([qs, 400, "validation_failed"]);
      expect(r.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    }
    const both = await h.request("GET", "/inbox?limit=0&since=x", { key: t.key });
    expect(both.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(["limit", "since"]);
  });

  test("scopes: inbox:read to lease or peek", async () => {
    const writer = await h.key("lease-scope", ["events:write"]);
    for (const path of ["/inbox", "/inbox?mode=peek"]) {
      const r = await h.request("GET", path, { key: writer });
      expect([path, r.status, r.body.error.code]).toEqual([path, 403, "forbidden"]);
    }
    expect((await h.request("GET", "/inbox")).status).toBe(401);
  });
});
