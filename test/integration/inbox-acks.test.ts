import { startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed, sleep } from "./inbox-fixtures";

const counter = async (c: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await c.get()).values[0]?.value ?? 0;

const ANY_LEASE = "00000000-0000-4000-8000-000000000000";

describe("acknowledgment: ack, batch ack, nack, extend, redrive", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `ack-${++n}`;
    return { id, key: await h.key(id) };
  };
  const statusOf = async (id: string) =>
    (await h.sql<{ status: string; delivery_count: number }>("SELECT status::text, delivery_count FROM deliveries WHERE event_id = $1", [id]))[0];

  beforeAll(async () => {
    // A small delivery budget, so dead events are quick to make.
    h = await startHarness({ worker: false, env: { MAX_DELIVERIES: "2" } });
  });
  afterAll(() => h.close());

  test("batch ack acknowledges in one call and reports unknown and foreign ids as not_found", async () => {
    const t = await tenant();
    const other = await tenant();
    const ids = await seed(h, t.id, 4);
    const [foreign] = await seed(h, other.id, 1);
    await h.request("GET", "/inbox", { key: t.key });
    const missing = "evt_00000000000000000000000000";
    const acksBefore = await counter(h.c.metrics.inboxAcks);
    const r = await h.request("POST", "/events/ack", { key: t.key, body: { ids: [ids[0], ids[1], foreign, missing, ids[0], ids[2]] } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ acknowledged: [ids[0], ids[1], ids[2]], not_delivered: [], not_found: [foreign, missing] });
    expect(await counter(h.c.metrics.inboxAcks)).toBe(acksBefore + 3);
    for (const id of ids.slice(0, 3)) expect((await statusOf(id))!.status).toBe("acknowledged");
    expect((await statusOf(ids[3]!))!.status).toBe("delivered");
    expect((await statusOf(foreign!))!.status).toBe("pending");

    // Idempotent: acknowledging again answers the same and counts nothing twice.
    const again = await h.request("POST", "/events/ack", { key: t.key, body: { ids: [ids[0], ids[3]] } });
    expect(again.body).toEqual({ acknowledged: [ids[0], ids[3]], not_delivered: [], not_found: [] });
    expect(await counter(h.c.metrics.inboxAcks)).toBe(acksBefore + 4);
    // Acknowledged events leave the inbox.
    expect((await h.request("GET", "/inbox", { key: t.key })).body.data).toEqual([]);
  });

  test("batch ack validates the body: every id shape, 1 to 1000 ids", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const bad = await h.request("POST", "/events/ack", { key: t.key, body: { ids: [id, "nope", 7] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { path: string }) => d.path)).toEqual(["ids.1", "ids.2"]);
    const tooMany = await h.request("POST", "/events/ack", { key: t.key, body: { ids: Array.from({ length: 1001 }, () => id) } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.details[0].path).toBe("ids");
    expect((await h.request("POST", "/events/ack", { key: t.key, body: { ids: [] } })).status).toBe(400);
    expect((await h.request("POST", "/events/ack", { key: t.key, body: {} })).status).toBe(400);
    expect((await h.request("POST", "/events/ack", { key: t.key })).status).toBe(400);
    expect((await statusOf(id!))!.status).toBe("pending");
    // 1000 ids is allowed (of leased events: an ack by id needs a delivered event).
    const many = await seed(h, t.id, 999);
    const leased = [];
    for (let round = 0; round < 2; round++) leased.push(...idsOf((await h.request("GET", "/inbox?limit=500&visibility_timeout=300", { key: t.key })).body));
    expect(leased).toHaveLength(1000);
    const ok = await h.request("POST", "/events/ack", { key: t.key, body: { ids: [id, ...many] } });
    expect(ok.status).toBe(200);
    expect(ok.body.acknowledged).toHaveLength(1000);
  });

  test("nack ends the lease now; with delay_seconds the event comes back only after the delay", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const leased = await h.request("GET", "/inbox?visibility_timeout=300", { key: t.key });
    const nacksBefore = await counter(h.c.metrics.inboxNacks);
    const nack = await h.request("POST", `/events/${id}/nack`, { key: t.key, body: { delay_seconds: 1, lease_id: leased.body.data[0].lease_id } });
    expect(nack.status).toBe(200);
    expect(nack.body).toEqual({ id, status: "pending", available_at: expect.any(String) });
    const delay = Date.parse(nack.body.available_at) - Date.now();
    expect(delay).toBeGreaterThan(500);
    expect(delay).toBeLessThanOrEqual(1000);
    expect(await counter(h.c.metrics.inboxNacks)).toBe(nacksBefore + 1);
    expect((await h.request("GET", "/inbox", { key: t.key })).body.data).toEqual([]);
    await sleep(1100);
    const again = await h.request("GET", "/inbox", { key: t.key });
    expect(idsOf(again.body)).toEqual([id]);
    expect(again.body.data[0].delivery_count).toBe(2);

    // Without delay_seconds: delay 0, available at once (the event is dead after its 2nd delivery next time).
    expect((await h.request("POST", `/events/${id}/nack`, { key: t.key })).status).toBe(400); // lease_id is required
    const now = await h.request("POST", `/events/${id}/nack`, { key: t.key, body: { lease_id: again.body.data[0].lease_id } });
    expect(now.status).toBe(200);
    expect(Date.parse(now.body.available_at)).toBeLessThanOrEqual(Date.now() + 50);
  });

  test("nack refuses stale leases, acknowledged events and bad bodies", async () => {
    const t = await tenant();
    const [a, b] = await seed(h, t.id, 2);
    const first = await h.request("GET", "/inbox?visibility_timeout=1&limit=1", { key: t.key });
    await sleep(1100);
    await h.request("GET", "/inbox?visibility_timeout=60&limit=1", { key: t.key });
    const stale = await h.request("POST", `/events/${a}/nack`, { key: t.key, body: { lease_id: first.body.data[0].lease_id } });
    expect([stale.status, stale.body.error.code]).toEqual([409, "lease_expired"]);
    expect((await statusOf(a!))!.status).toBe("delivered");

    expect(idsOf((await h.request("GET", "/inbox?limit=1", { key: t.key })).body)).toEqual([b]);
    expect((await h.request("POST", `/events/${b}/ack`, { key: t.key })).status).toBe(200);
    const acked = await h.request("POST", `/events/${b}/nack`, { key: t.key, body: { delay_seconds: 5, lease_id: ANY_LEASE } });
    expect([acked.status, acked.body.error.code]).toEqual([409, "already_acknowledged"]);

    for (const [body, path] of [
      [{ delay_seconds: -1, lease_id: ANY_LEASE }, "delay_seconds"],
      [{ delay_seconds: 43201, lease_id: ANY_LEASE }, "delay_seconds"],
      [{ delay_seconds: "5", lease_id: ANY_LEASE }, "delay_seconds"],
      [{ lease_id: "not-a-uuid" }, "lease_id"],
      [{ delay_seconds: 5 }, "lease_id"],
      [{ other: 1, lease_id: ANY_LEASE }, "other"],
    ] as const) {
      const r = await h.request("POST", `/events/${a}/nack`, { key: t.key, body });
      expect([r.status, r.body.error.details[0].path]).toEqual([400, path]);
    }
  });

  test("extend keeps the lease alive from now; a lapsed or foreign lease is 409 lease_expired", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const leased = await h.request("GET", "/inbox?visibility_timeout=1", { key: t.key });
    const lease = leased.body.data[0].lease_id as string;
    const ext = await h.request("POST", `/events/${id}/extend`, { key: t.key, body: { visibility_timeout: 5, lease_id: lease } });
    expect(ext.status).toBe(200);
    expect(ext.body).toEqual({ id, status: "delivered", lease_id: lease, lease_expires_at: expect.any(String) });
    expect(Date.parse(ext.body.lease_expires_at) - Date.now()).toBeGreaterThan(4000);
    await sleep(1200);
    // Past the original lease, the event stays leased.
    expect((await h.request("GET", "/inbox", { key: t.key })).body.data).toEqual([]);
    const wrong = await h.request("POST", `/events/${id}/extend`, {
      key: t.key,
      body: { visibility_timeout: 5, lease_id: "00000000-0000-4000-8000-000000000000" },
    });
    expect([wrong.status, wrong.body.error.code]).toEqual([409, "lease_expired"]);
    // Shorten it to 1 s, let it lapse: extending now is refused.
    await h.request("POST", `/events/${id}/extend`, { key: t.key, body: { visibility_timeout: 1, lease_id: lease } });
    await sleep(1100);
    const lapsed = await h.request("POST", `/events/${id}/extend`, { key: t.key, body: { visibility_timeout: 30, lease_id: lease } });
    expect([lapsed.status, lapsed.body.error.code]).toEqual([409, "lease_expired"]);
    // Only the lease's holder may extend it: lease_id is required.
    const noLease = await h.request("POST", `/events/${id}/extend`, { key: t.key, body: { visibility_timeout: 30 } });
    expect([noLease.status, noLease.body.error.details[0].path]).toEqual([400, "lease_id"]);
    const ack = await h.request("POST", `/events/${id}/ack`, { key: t.key, body: { lease_id: lease } });
    expect([ack.status, ack.body.error.code]).toEqual([409, "lease_expired"]);

    for (const body of [{ lease_id: lease }, { visibility_timeout: 0, lease_id: lease }, { visibility_timeout: 3601, lease_id: lease }, { visibility_timeout: "abc", lease_id: lease }]) {
      const r = await h.request("POST", `/events/${id}/extend`, { key: t.key, body });
      expect([r.status, r.body.error.details[0].path]).toEqual([400, "visibility_timeout"]);
    }
  });

  test("after max deliveries an event is dead, listed by peek status=dead, and redrive brings it back", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    for (let i = 1; i <= 2; i++) {
      const r = await h.request("GET", "/inbox?visibility_timeout=1", { key: t.key });
      expect(r.body.data.map((e: { delivery_count: number }) => e.delivery_count)).toEqual([i]);
      await sleep(1050);
    }
    const deadBefore = await counter(h.c.metrics.inboxDead);
    expect((await h.request("GET", "/inbox", { key: t.key })).body).toEqual({ data: [], has_more: false });
    expect(await counter(h.c.metrics.inboxDead)).toBe(deadBefore + 1);
    const row = await statusOf(id!);
    expect(row).toEqual({ status: "dead", delivery_count: 2 });
    const peek = await h.request("GET", "/inbox?mode=peek&status=dead", { key: t.key });
    expect(peek.body.data).toEqual([expect.objectContaining({ id, status: "dead", dead_at: expect.any(String), lease_expires_at: null })]);
    expect(peek.body.data[0]).not.toHaveProperty("lease_id");
    expect((await h.request("GET", "/inbox?mode=peek&status=pending", { key: t.key })).body.data).toEqual([]);

    const nack = await h.request("POST", `/events/${id}/nack`, { key: t.key, body: { lease_id: ANY_LEASE } });
    expect([nack.status, nack.body.error.code]).toEqual([409, "event_dead"]);

    const redrive = await h.request("POST", `/events/${id}/redrive`, { key: t.key });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toMatchObject({ id, status: "pending", delivery_count: 0, dead_at: null, lease_expires_at: null });
    expect(redrive.body).not.toHaveProperty("lease_id");
    const again = await h.request("POST", `/events/${id}/redrive`, { key: t.key });
    expect([again.status, again.body.error.code]).toEqual([409, "not_dead"]);
    const leased = await h.request("GET", "/inbox", { key: t.key });
    expect(leased.body.data).toEqual([expect.objectContaining({ id, delivery_count: 1, status: "delivered" })]);
    const whileLeased = await h.request("POST", `/events/${id}/redrive`, { key: t.key });
    expect([whileLeased.status, whileLeased.body.error.code]).toEqual([409, "not_dead"]);
  });

  test("every inbox and ack route answers 404 for another tenant's event and leaves it untouched", async () => {
    const a = await tenant();
    const b = await tenant();
    const [theirs] = await seed(h, b.id, 1);
    const leased = await h.request("GET", "/inbox", { key: b.key });
    const lease = leased.body.data[0].lease_id as string;
    const before = await h.sql("SELECT * FROM deliveries WHERE event_id = $1", [theirs]);
    const calls: Array<[string, string, unknown]> = [
      ["GET", `/events/${theirs}`, undefined],
      ["POST", `/events/${theirs}/ack`, undefined],
      ["POST", `/events/${theirs}/ack`, { lease_id: lease }],
      ["DELETE", `/events/${theirs}/ack`, undefined],
      ["POST", `/events/${theirs}/nack`, { delay_seconds: 0, lease_id: lease }],
      ["POST", `/events/${theirs}/extend`, { visibility_timeout: 10, lease_id: lease }],
      ["POST", `/events/${theirs}/redrive`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const r = await h.request(method, path, { key: a.key, ...(body === undefined ? {} : { body }) });
      expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 404, "not_found"]);
    }
    const batch = await h.request("POST", "/events/ack", { key: a.key, body: { ids: [theirs] } });
    expect(batch.body).toEqual({ acknowledged: [], not_delivered: [], not_found: [theirs] });
    expect(idsOf((await h.request("GET", "/inbox?mode=peek", { key: a.key })).body)).toEqual([]);
    expect((await h.request("GET", "/inbox", { key: a.key })).body.data).toEqual([]);
    expect(await h.sql("SELECT * FROM deliveries WHERE event_id = $1", [theirs])).toEqual(before);
    // A malformed id is simply not found as well.
    expect((await h.request("POST", "/events/evt_bad/nack", { key: a.key })).status).toBe(404);
  });

  test("scopes: ack, batch ack, nack, extend and redrive need events:ack", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const reader = await h.key(t.id, ["inbox:read"]);
    for (const [method, path, body] of [
      ["POST", `/events/${id}/ack`, undefined],
      ["DELETE", `/events/${id}/ack`, undefined],
      ["POST", "/events/ack", { ids: [id] }],
      ["POST", `/events/${id}/nack`, undefined],
      ["POST", `/events/${id}/extend`, { visibility_timeout: 5 }],
      ["POST", `/events/${id}/redrive`, undefined],
    ] as const) {
      const r = await h.request(method, path, { key: reader, ...(body === undefined ? {} : { body }) });
      expect([method, path, r.status]).toEqual([method, path, 403]);
    }
  });
});
