import { releaseLeases } from "../../src/store/events/release-leases";
import { startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed } from "./inbox-fixtures";

/**
 * A lease id is a secret, like an SQS receipt handle: only the lease answer (GET /inbox in lease
 * mode) carries it. An ack that names a lease must hold it; an ack by event id alone acknowledges
 * only an event that was delivered to a consumer (leased at least once), never one nobody leased.
 */
describe("lease ids are secrets; acks by id need a delivered event", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `secret-${++n}`;
    return { id, key: await h.key(id) };
  };
  const row = async (id: string) =>
    (await h.sql<{ status: string; acknowledged_at: Date | null }>("SELECT status::text, acknowledged_at FROM deliveries WHERE event_id = $1", [id]))[0];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("only the lease answer carries lease_id: peek and GET /events/{id} show the lease without it", async () => {
    const t = await tenant();
    const [a] = await seed(h, t.id, 1);
    const leased = await h.request("GET", "/inbox", { key: t.key });
    expect(leased.body.data[0]).toMatchObject({ id: a, status: "delivered", lease_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const lease = leased.body.data[0].lease_id as string;

    const peek = await h.request("GET", "/inbox?mode=peek", { key: t.key });
    expect(peek.status).toBe(200);
    expect(peek.body.data).toEqual([expect.objectContaining({ id: a, status: "delivered", lease_expires_at: leased.body.data[0].lease_expires_at })]);
    expect(peek.body.data[0]).not.toHaveProperty("lease_id");
    const got = await h.request("GET", `/events/${a}`, { key: t.key });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: a, status: "delivered", lease_expires_at: leased.body.data[0].lease_expires_at });
    expect(got.body).not.toHaveProperty("lease_id");
    expect(got.body.deliveries).toEqual([expect.objectContaining({ subscription: "default", status: "delivered", lease_expires_at: leased.body.data[0].lease_expires_at })]);
    expect(got.body.deliveries[0]).not.toHaveProperty("lease_id");
    // Nowhere in either answer.
    expect(peek.text).not.toContain(lease);
    expect(got.text).not.toContain(lease);
  });

  test("an ack by id of an event nobody leased is 409 not_delivered and changes nothing (POST and DELETE)", async () => {
    const t = await tenant();
    const [a] = await seed(h, t.id, 1);
    for (const method of ["POST", "DELETE"]) {
      const r = await h.request(method, `/events/${a}/ack`, { key: t.key });
      expect([method, r.status, r.body.error?.code]).toEqual([method, 409, "not_delivered"]);
    }
    expect(await row(a!)).toEqual({ status: "pending", acknowledged_at: null });
    // Once leased, the same ack by id acknowledges it (the original contract).
    expect(idsOf((await h.request("GET", "/inbox", { key: t.key })).body)).toEqual([a]);
    const ok = await h.request("POST", `/events/${a}/ack`, { key: t.key });
    expect([ok.status, ok.body.status]).toEqual([200, "acknowledged"]);
    expect((await row(a!))!.status).toBe("acknowledged");
  });

  test("delivered once is enough: a nacked (pending again) event is acked by id; a lease never handed out does not count", async () => {
    const t = await tenant();
    const [a, b] = await seed(h, t.id, 2);
    const leased = await h.request("GET", "/inbox", { key: t.key });
    const leaseOf = Object.fromEntries(leased.body.data.map((e: { id: string; lease_id: string }) => [e.id, e.lease_id]));
    expect((await h.request("POST", `/events/${a}/nack`, { key: t.key, body: { lease_id: leaseOf[a!], delay_seconds: 3600 } })).status).toBe(200);
    expect((await row(a!))!.status).toBe("pending");
    expect((await h.request("POST", `/events/${a}/ack`, { key: t.key })).status).toBe(200);
    // A long poll whose client went away releases its lease: the event counts as never delivered.
    expect(await releaseLeases(h.c.db.prisma, t.id, [{ id: b!, lease_id: leaseOf[b!] }])).toBe(1);
    const r = await h.request("POST", `/events/${b}/ack`, { key: t.key });
    expect([r.status, r.body.error?.code]).toEqual([409, "not_delivered"]);
    expect((await row(b!))!.status).toBe("pending");
  });

  test("batch ack {ids} reports never-leased events per id in not_delivered and leaves them pending", async () => {
    const t = await tenant();
    const [a, b, c] = await seed(h, t.id, 3);
    await h.request("GET", "/inbox?limit=1", { key: t.key }); // leases a only
    const missing = "evt_00000000000000000000000000";
    const r = await h.request("POST", "/events/ack", { key: t.key, body: { ids: [c, a, missing, b] } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ acknowledged: [a], not_delivered: [c, b], not_found: [missing] });
    expect([(await row(a!))!.status, (await row(b!))!.status, (await row(c!))!.status]).toEqual(["acknowledged", "pending", "pending"]);
  });

  test("a lease-bound ack must hold the lease, also once the event is acknowledged (single and batch)", async () => {
    const t = await tenant();
    const [a, b] = await seed(h, t.id, 2);
    const leased = await h.request("GET", "/inbox", { key: t.key });
    const leaseOf = Object.fromEntries(leased.body.data.map((e: { id: string; lease_id: string }) => [e.id, e.lease_id]));
    // Another event's lease is not this event's.
    const crossed = await h.request("POST", `/events/${a}/ack`, { key: t.key, body: { lease_id: leaseOf[b!] } });
    expect([crossed.status, crossed.body.error?.code]).toEqual([409, "lease_expired"]);
    const ok = await h.request("POST", `/events/${a}/ack`, { key: t.key, body: { lease_id: leaseOf[a!] } });
    expect(ok.status).toBe(200);
    // The holder's repeat is the idempotent 200; any other lease is refused, even now.
    const repeat = await h.request("POST", `/events/${a}/ack`, { key: t.key, body: { lease_id: leaseOf[a!] } });
    expect([repeat.status, repeat.body.acknowledged_at]).toEqual([200, ok.body.acknowledged_at]);
    for (const other of [leaseOf[b!], "00000000-0000-4000-8000-000000000000"]) {
      const single = await h.request("POST", `/events/${a}/ack`, { key: t.key, body: { lease_id: other } });
      expect([single.status, single.body.error?.code]).toEqual([409, "lease_expired"]);
      const del = await h.request("DELETE", `/events/${a}/ack?lease_id=${other}`, { key: t.key });
      expect([del.status, del.body.error?.code]).toEqual([409, "lease_expired"]);
      const batch = await h.request("POST", "/events/ack", { key: t.key, body: { leases: [{ id: a, lease_id: other }] } });
      expect(batch.body.results).toEqual([{ id: a, lease_id: other, status: "lease_expired" }]);
    }
    const batchRepeat = await h.request("POST", "/events/ack", { key: t.key, body: { leases: [{ id: a, lease_id: leaseOf[a!] }] } });
    expect(batchRepeat.body.results).toEqual([{ id: a, lease_id: leaseOf[a!], status: "acknowledged" }]);
  });

  test("a key with only events:ack: no reads, acks by id of delivered events, acks with a lease it is handed", async () => {
    const t = await tenant();
    const acker = await h.key(t.id, ["events:ack"]);
    const [a, b, c] = await seed(h, t.id, 3);
    const leased = await h.request("GET", "/inbox?limit=2", { key: t.key }); // a and b
    const leaseOf = Object.fromEntries(leased.body.data.map((e: { id: string; lease_id: string }) => [e.id, e.lease_id]));
    for (const path of ["/inbox", "/inbox?mode=peek", `/events/${a}`]) expect([path, (await h.request("GET", path, { key: acker })).status]).toEqual([path, 403]);
    expect((await h.request("POST", `/events/${a}/ack`, { key: acker })).status).toBe(200);
    expect((await h.request("POST", `/events/${b}/extend`, { key: acker, body: { lease_id: leaseOf[b!], visibility_timeout: 60 } })).status).toBe(200);
    expect((await h.request("POST", `/events/${b}/ack`, { key: acker, body: { lease_id: leaseOf[b!] } })).status).toBe(200);
    const never = await h.request("POST", `/events/${c}/ack`, { key: acker });
    expect([never.status, never.body.error?.code]).toEqual([409, "not_delivered"]);
    expect((await row(c!))!.status).toBe("pending");
  });
});
