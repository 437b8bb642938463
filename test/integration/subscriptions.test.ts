import { startHarness, type Harness } from "../helpers/harness";
import { purgeDeletedSubscriptions } from "../../src/jobs/purge-subscriptions";
import { idsOf, seed } from "./inbox-fixtures";

const LEASE = "6f1c7f0e-8d1e-4c55-9b5e-0a0a0a0a0a0a";

/** Named subscriptions: the resources, store-time fan-out, and per-subscription delivery state. */
describe("subscriptions", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `subs-${++n}`;
    return { id, key: await h.key(id) };
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { MAX_DELIVERIES: "2" } });
  });
  afterAll(() => h.close());

  test("create, list, read, change and delete; names and filters are checked", async () => {
    const t = await tenant();
    const created = await h.request("POST", "/subscriptions", { key: t.key, body: { name: "billing", filter: { types: ["order.paid"] } } });
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe("/subscriptions/billing");
    expect(created.body).toEqual({ name: "billing", filter: { types: ["order.paid"] }, created_at: expect.any(String), updated_at: expect.any(String) });
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "billing" } })).body.error.code).toBe("subscription_exists");
    for (const name of ["", "Billing", "-x", "a".repeat(65), "a b", "ü"]) {
      expect([name, (await h.request("POST", "/subscriptions", { key: t.key, body: { name } })).status]).toEqual([name, 400]);
    }
    for (const filter of [{ types: [] }, { types: "x" }, { colours: ["red"] }, { tags: [""] }]) {
      expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "bad", filter } })).status).toBe(400);
    }
    const list = await h.request("GET", "/subscriptions", { key: t.key });
    expect(list.body.data.map((s: { name: string }) => s.name)).toEqual(["billing", "default"]);
    expect(list.body.data[1].filter).toEqual({});
    const patched = await h.request("PATCH", "/subscriptions/billing", { key: t.key, body: { filter: { sources: ["shop"], tags: ["eu"] } } });
    expect([patched.status, patched.body.filter]).toEqual([200, { sources: ["shop"], tags: ["eu"] }]);
    expect((await h.request("GET", "/subscriptions/billing", { key: t.key })).body.filter).toEqual({ sources: ["shop"], tags: ["eu"] });
    expect((await h.request("PATCH", "/subscriptions/default", { key: t.key, body: { filter: null } })).body.error.code).toBe("default_subscription");
    expect((await h.request("DELETE", "/subscriptions/default", { key: t.key })).body.error.code).toBe("default_subscription");
    expect((await h.request("DELETE", "/subscriptions/billing", { key: t.key })).status).toBe(204);
    expect((await h.request("GET", "/subscriptions/billing", { key: t.key })).status).toBe(404);
    expect((await h.request("DELETE", "/subscriptions/billing", { key: t.key })).status).toBe(404);
  });

  test("scope subscriptions:manage (admin implies it); another tenant's subscriptions are 404", async () => {
    const t = await tenant();
    const reader = await h.key(t.id, ["inbox:read", "events:ack"]);
    const manager = await h.key(t.id, ["subscriptions:manage"]);
    expect((await h.request("GET", "/subscriptions", { key: reader })).status).toBe(403);
    expect((await h.request("POST", "/subscriptions", { key: manager, body: { name: "mine" } })).status).toBe(201);
    const other = await tenant();
    expect((await h.request("GET", "/subscriptions/mine", { key: other.key })).status).toBe(404);
    expect((await h.request("GET", "/inbox?subscription=mine", { key: other.key })).status).toBe(404);
    expect((await h.request("GET", "/subscriptions", { key: other.key })).body.data.map((s: { name: string }) => s.name)).toEqual(["default"]);
  });

  test("an unknown subscription answers 404 on every inbox and ack route", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const calls: Array<[string, string, unknown]> = [
      ["GET", "/inbox?subscription=nope", undefined],
      ["GET", "/inbox?mode=peek&subscription=nope", undefined],
      ["GET", `/events/${id}?subscription=nope`, undefined],
      ["POST", `/events/${id}/ack?subscription=nope`, undefined],
      ["DELETE", `/events/${id}/ack?subscription=nope`, undefined],
      ["POST", "/events/ack?subscription=nope", { ids: [id] }],
      ["POST", `/events/${id}/nack?subscription=nope`, { lease_id: LEASE }],
      ["POST", `/events/${id}/extend?subscription=nope`, { visibility_timeout: 5, lease_id: LEASE }],
      ["POST", "/events/ack?subscription=nope", { leases: [{ id, lease_id: LEASE }] }],
      ["POST", `/events/${id}/redrive?subscription=nope`, undefined],
      ["GET", "/inbox?subscription=NOT_A_NAME", undefined],
    ];
    for (const [method, path, body] of calls) {
      const r = await h.request(method, path, { key: t.key, ...(body === undefined ? {} : { body }) });
      expect([method, path, r.status]).toEqual([method, path, 404]);
    }
    // default is untouched and still explicit-or-implicit
    expect(idsOf((await h.request("GET", "/inbox?subscription=default", { key: t.key })).body)).toEqual([id]);
  });

  test("two overlapping subscriptions each lease, nack, dead-letter, redrive and ack independently", async () => {
    const t = await tenant();
    // Stored before the subscriptions exist: only default receives it.
    const [before] = await seed(h, t.id, [{ type: "order.paid", tags: ["eu"] }]);
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "billing", filter: { types: ["order.paid", "order.refunded"] } } })).status).toBe(201);
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "audit", filter: { tags: ["eu"], sources: ["shop", "crm"] } } })).status).toBe(201);
    const [both, billingOnly, auditOnly, neither, wrongSource] = await seed(h, t.id, [
      { type: "order.paid", source: "shop", tags: ["eu", "vip"] },
      { type: "order.refunded", source: "shop", tags: [] },
      { type: "user.created", source: "crm", tags: ["eu"] },
      { type: "user.created", source: "shop", tags: ["us"] },
      { type: "order.created", source: "pos", tags: ["eu"] },
    ]);
    const lease = async (sub: string) => (await h.request("GET", `/inbox?subscription=${sub}&visibility_timeout=60`, { key: t.key })).body;
    const billing1 = await lease("billing");
    const audit1 = await lease("audit");
    expect(idsOf(billing1)).toEqual([both, billingOnly]);
    expect(idsOf(audit1)).toEqual([both, auditOnly]);
    // Each subscription holds its own lease on the shared event.
    const billingLease = billing1.data[0].lease_id as string;
    const auditLease = audit1.data[0].lease_id as string;
    expect(billingLease).not.toBe(auditLease);
    expect(idsOf((await h.request("GET", "/inbox", { key: t.key })).body)).toEqual([before, both, billingOnly, auditOnly, neither, wrongSource]);

    // A lease of one subscription is not valid in another.
    expect((await h.request("POST", `/events/${both}/ack?subscription=audit`, { key: t.key, body: { lease_id: billingLease } })).status).toBe(409);
    // Nack in billing; audit's lease is untouched.
    const nack = await h.request("POST", `/events/${both}/nack?subscription=billing`, { key: t.key, body: { lease_id: billingLease } });
    expect([nack.status, nack.body.status]).toEqual([200, "pending"]);
    const extend = await h.request("POST", `/events/${both}/extend?subscription=audit`, { key: t.key, body: { lease_id: auditLease, visibility_timeout: 120 } });
    expect(extend.status).toBe(200);

    // Billing leases it again (delivery 2 = MAX_DELIVERIES), nacks, and the next lease turns it dead.
    const billing2 = await lease("billing");
    expect(idsOf(billing2)).toEqual([both]);
    await h.request("POST", `/events/${both}/nack?subscription=billing`, { key: t.key, body: { lease_id: billing2.data[0].lease_id } });
    expect(idsOf(await lease("billing"))).toEqual([]);
    // Audit acks its delivery: acking in one never changes another.
    const ack = await h.request("POST", `/events/${both}/ack?subscription=audit`, { key: t.key, body: { lease_id: auditLease } });
    expect(ack.status).toBe(200);
    const detail = await h.request("GET", `/events/${both}?subscription=billing`, { key: t.key });
    expect(detail.status).toBe(200);
    expect(detail.body.status).toBe("dead");
    expect(detail.body.deliveries.map((d: { subscription: string; status: string; delivery_count: number }) => [d.subscription, d.status, d.delivery_count])).toEqual([
      ["audit", "acknowledged", 1],
      ["billing", "dead", 2],
      ["default", "delivered", 1],
    ]);
    expect((await h.request("GET", `/events/${both}`, { key: t.key })).body.status).toBe("delivered");

    // Redrive in billing; audit stays acknowledged, and nack in audit is refused.
    const redriven = await h.request("POST", `/events/${both}/redrive?subscription=billing`, { key: t.key });
    expect([redriven.status, redriven.body.status, redriven.body.delivery_count]).toEqual([200, "pending", 0]);
    expect((await h.request("POST", `/events/${both}/nack?subscription=audit`, { key: t.key, body: { lease_id: auditLease } })).body.error.code).toBe("already_acknowledged");
    expect((await h.request("POST", `/events/${both}/redrive?subscription=audit`, { key: t.key })).body.error.code).toBe("not_dead");

    // Batch ack per subscription: an event the subscription never received is not found there.
    const batch = await h.request("POST", "/events/ack?subscription=billing", { key: t.key, body: { ids: [both, billingOnly, auditOnly] } });
    expect(batch.body).toEqual({ acknowledged: [both, billingOnly], not_delivered: [], not_found: [auditOnly] });
    const peekAudit = await h.request("GET", "/inbox?mode=peek&subscription=audit", { key: t.key });
    expect(peekAudit.body.data.map((e: { id: string; status: string }) => [e.id, e.status])).toEqual([
      [both, "acknowledged"],
      [auditOnly, "delivered"],
    ]);
    const peekDefault = await h.request("GET", "/inbox?mode=peek&status=pending", { key: t.key });
    expect(idsOf(peekDefault.body)).toEqual([]);

    // Deleting a subscription removes its deliveries (by the purge, in the background), not the events or other deliveries.
    expect((await h.request("DELETE", "/subscriptions/billing", { key: t.key })).status).toBe(204);
    await purgeDeletedSubscriptions({ prisma: h.c.db.prisma }, { batchSize: 1000, timeBudgetMs: 60_000 });
    const left = await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1", [t.id]);
    expect(left[0]!.n).toBe(6 + 2); // default: 6, audit: 2
    expect((await h.request("GET", `/events/${both}`, { key: t.key })).body.deliveries.map((d: { subscription: string }) => d.subscription)).toEqual(["audit", "default"]);
  });

  test("a changed filter applies to events stored from then on", async () => {
    const t = await tenant();
    await h.request("POST", "/subscriptions", { key: t.key, body: { name: "x", filter: { types: ["a"] } } });
    const [a1] = await seed(h, t.id, [{ type: "a" }, { type: "b" }]);
    await h.request("PATCH", "/subscriptions/x", { key: t.key, body: { filter: { types: ["b"] } } });
    const [, b2] = await seed(h, t.id, [{ type: "a" }, { type: "b" }]);
    expect(idsOf((await h.request("GET", "/inbox?mode=peek&subscription=x", { key: t.key })).body)).toEqual([a1, b2]);
  });
});
