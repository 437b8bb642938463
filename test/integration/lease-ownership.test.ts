import { startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed, sleep } from "./inbox-fixtures";

/** lease_id is the lease's token: nack/extend need it, acks check it, batch ack reports per item. */
describe("lease ownership", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `own-${++n}`;
    return { id, key: await h.key(id) };
  };
  const status = async (id: string) => (await h.sql<{ status: string }>("SELECT status::text FROM deliveries WHERE event_id = $1", [id]))[0]?.status;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("batch ack {leases}: per-item acknowledged, lease_expired and not_found, in request order", async () => {
    const t = await tenant();
    const other = await tenant();
    const [a, b, c] = await seed(h, t.id, 3);
    const [theirs] = await seed(h, other.id, 1);
    const leased = await h.request("GET", "/inbox?limit=3", { key: t.key });
    const lease = Object.fromEntries(leased.body.data.map((e: { id: string; lease_id: string }) => [e.id, e.lease_id]));
    const theirLease = (await h.request("GET", "/inbox", { key: other.key })).body.data[0].lease_id;
    const wrong = "00000000-0000-4000-8000-000000000000";
    const r = await h.request("POST", "/events/ack", {
      key: t.key,
      body: { leases: [{ id: b, lease_id: lease[b!] }, { id: a, lease_id: wrong }, { id: theirs, lease_id: theirLease }, { id: c, lease_id: lease[c!] }] },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      results: [
        { id: b, lease_id: lease[b!], status: "acknowledged" },
        { id: a, lease_id: wrong, status: "lease_expired" },
        { id: theirs, lease_id: theirLease, status: "not_found" },
        { id: c, lease_id: lease[c!], status: "acknowledged" },
      ],
    });
    expect([await status(a!), await status(b!), await status(c!), await status(theirs!)]).toEqual(["delivered", "acknowledged", "acknowledged", "delivered"]);
    // A repeat is idempotent: already acknowledged events stay acknowledged.
    const again = await h.request("POST", "/events/ack", { key: t.key, body: { leases: [{ id: b, lease_id: lease[b!] }] } });
    expect(again.body.results).toEqual([{ id: b, lease_id: lease[b!], status: "acknowledged" }]);
    expect(Number((await h.c.metrics.inboxAcks.get()).values[0]?.value)).toBeGreaterThanOrEqual(2);
  });

  test("batch ack refuses a stale lease after redelivery, and bad bodies are 400", async () => {
    const t = await tenant();
    const [a] = await seed(h, t.id, 1);
    const first = await h.request("GET", "/inbox?visibility_timeout=1", { key: t.key });
    await sleep(1100);
    const second = await h.request("GET", "/inbox", { key: t.key });
    expect(idsOf(second.body)).toEqual([a]);
    const stale = await h.request("POST", "/events/ack", { key: t.key, body: { leases: [{ id: a, lease_id: first.body.data[0].lease_id }] } });
    expect(stale.body.results[0].status).toBe("lease_expired");
    expect(await status(a!)).toBe("delivered");
    for (const body of [
      { ids: [a], leases: [{ id: a, lease_id: second.body.data[0].lease_id }] },
      {},
      { leases: [] },
      { leases: [{ id: a }] },
      { leases: [{ id: a, lease_id: "nope" }] },
      { leases: [{ id: "x", lease_id: second.body.data[0].lease_id }] },
    ]) {
      const r = await h.request("POST", "/events/ack", { key: t.key, body });
      expect([JSON.stringify(body), r.status, r.body.error.code]).toEqual([JSON.stringify(body), 400, "validation_failed"]);
    }
  });

  test("ack without lease_id acknowledges whatever delivery is current (the original contract)", async () => {
    const t = await tenant();
    const [a] = await seed(h, t.id, 1);
    await h.request("GET", "/inbox?visibility_timeout=1", { key: t.key });
    await sleep(1100);
    // Redelivered to someone else; the first consumer's lease-less ack still acknowledges it.
    const second = await h.request("GET", "/inbox", { key: t.key });
    expect(idsOf(second.body)).toEqual([a]);
    const ack = await h.request("POST", `/events/${a}/ack`, { key: t.key });
    expect(ack.status).toBe(200);
    expect(await status(a!)).toBe("acknowledged");
  });

  test("nack and extend need lease_id: 400 without, 409 with a wrong one, 200 with the current one", async () => {
    const t = await tenant();
    const [a] = await seed(h, t.id, 1);
    const lease = (await h.request("GET", "/inbox", { key: t.key })).body.data[0].lease_id;
    for (const [path, body] of [
      [`/events/${a}/nack`, { delay_seconds: 0 }],
      [`/events/${a}/extend`, { visibility_timeout: 60 }],
    ] as const) {
      const missing = await h.request("POST", path, { key: t.key, body });
      expect([path, missing.status, missing.body.error.details.map((d: { path: string }) => d.path)]).toEqual([path, 400, ["lease_id"]]);
      const wrong = await h.request("POST", path, { key: t.key, body: { ...body, lease_id: "00000000-0000-4000-8000-000000000000" } });
      expect([path, wrong.status, wrong.body.error.code]).toEqual([path, 409, "lease_expired"]);
    }
    expect((await h.request("POST", `/events/${a}/extend`, { key: t.key, body: { visibility_timeout: 3600, lease_id: lease } })).status).toBe(200);
    expect((await h.request("POST", `/events/${a}/extend`, { key: t.key, body: { visibility_timeout: 3601, lease_id: lease } })).status).toBe(400);
    expect((await h.request("POST", `/events/${a}/nack`, { key: t.key, body: { lease_id: lease } })).status).toBe(200);
    expect(await status(a!)).toBe("pending");
  });
});
