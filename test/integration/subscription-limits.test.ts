import { startHarness, type Harness } from "../helpers/harness";
import { purgeDeletedSubscriptions } from "../../src/jobs/purge-subscriptions";
import { seed } from "./inbox-fixtures";

/** Per-tenant bounds of subscriptions: the quota, deletion off the request path, and filter values the events could carry. */
describe("subscription limits", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `sublim-${++n}`;
    return { id, key: await h.key(id) };
  };

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { MAX_SUBSCRIPTIONS_PER_TENANT: "5" } });
  });
  afterAll(() => h.close());

  test("a tenant has at most MAX_SUBSCRIPTIONS_PER_TENANT subscriptions (default included), also under concurrent creates", async () => {
    const t = await tenant();
    const other = await tenant();
    // 20 creates at once: exactly 4 fit next to `default`. A create the machine's load kept past
    // its transaction deadline answers 503 with Retry-After, and is sent again, as a client does.
    const create = async (name: string) => {
      for (;;) {
        const answer = await h.request("POST", "/subscriptions", { key: t.key, body: { name } });
        if (answer.status !== 503) return answer;
        expect(Number(answer.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      }
    };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`s${i}`)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(4);
    expect(statuses.filter((s) => s === 409)).toHaveLength(16);
    const refused = answers.find((a) => a.status === 409)!;
    expect(refused.body.error.code).toBe("subscription_quota_exceeded");
    expect(refused.body.error.message).toMatch(/5/);
    expect((await h.request("GET", "/subscriptions", { key: t.key })).body.data).toHaveLength(5);
    // Another tenant is not affected.
    expect((await h.request("POST", "/subscriptions", { key: other.key, body: { name: "x" } })).status).toBe(201);
    // Deleting one frees its slot at once.
    const victim = answers.find((a) => a.status === 201)!.body.name as string;
    expect((await h.request("DELETE", `/subscriptions/${victim}`, { key: t.key })).status).toBe(204);
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "again" } })).status).toBe(201);
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "more" } })).body.error.code).toBe("subscription_quota_exceeded");
  });

  test("filter values follow the event fields' rules: a bad value is a 400 naming the field, on POST and PATCH", async () => {
    const t = await tenant();
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "ok", filter: { types: ["order.paid"], sources: ["shop eu"], tags: ["region=eu"] } } })).status).toBe(201);
    const bad: Array<[string, unknown]> = [
      ["types", ["a\u0000b"]],
      ["types", ["has space"]],
      ["types", [".leading-dot"]],
      ["types", ["x".repeat(129)]],
      ["sources", ["shop\u0000"]],
      ["sources", ["x".repeat(257)]],
      ["sources", ["\ud800"]],
      ["tags", ["eu\u0000"]],
      ["tags", ["x".repeat(65)]],
      ["tags", ["a tag"]],
      ["tags", Array.from({ length: 21 }, (_, i) => `t${i}`)],
    ];
    for (const [field, values] of bad) {
      for (const [method, path, body] of [
        ["POST", "/subscriptions", { name: "bad", filter: { [field]: values } }],
        ["PATCH", "/subscriptions/ok", { filter: { [field]: values } }],
      ] as const) {
        const r = await h.request(method, path, { key: t.key, body });
        expect([method, field, r.status, r.body?.error?.code]).toEqual([method, field, 400, "validation_failed"]);
        expect(JSON.stringify(r.body.error.details)).toContain(`filter.${field}`);
      }
    }
    // Nothing was changed by the refused PATCHes.
    expect((await h.request("GET", "/subscriptions/ok", { key: t.key })).body.filter).toEqual({ types: ["order.paid"], sources: ["shop eu"], tags: ["region=eu"] });
  });

  test("DELETE answers at once; the subscription is gone from the API, fan-out and leases at once; its deliveries are purged in batches", async () => {
    const t = await tenant();
    // Earlier tests' deleted subscriptions first, so the steps below are this one's.
    await purgeDeletedSubscriptions({ prisma: h.c.db.prisma }, { batchSize: 1000, timeBudgetMs: 60_000 });
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "big" } })).status).toBe(201);
    await seed(h, t.id, 25);
    const subId = (await h.sql<{ id: number }>("SELECT id FROM subscriptions WHERE tenant_id = $1 AND name = 'big'", [t.id]))[0]!.id;
    expect((await h.request("DELETE", "/subscriptions/big", { key: t.key })).status).toBe(204);
    // Gone from the API at once, and the name is free again.
    expect((await h.request("GET", "/subscriptions/big", { key: t.key })).status).toBe(404);
    expect((await h.request("GET", "/subscriptions", { key: t.key })).body.data.map((s: { name: string }) => s.name)).toEqual(["default"]);
    expect((await h.request("GET", "/inbox?subscription=big", { key: t.key })).status).toBe(404);
    expect((await h.request("DELETE", "/subscriptions/big", { key: t.key })).status).toBe(404);
    // The deleted subscription receives no new fan-out; its old deliveries are still there until purged.
    const [stored] = await seed(h, t.id, 1);
    expect(await h.sql("SELECT 1 FROM deliveries WHERE event_id = $1 AND subscription_id = $2", [stored, subId])).toEqual([]);
    expect((await h.request("GET", `/events/${stored}`, { key: t.key })).body.deliveries.map((d: { subscription: string }) => d.subscription)).toEqual(["default"]);
    const count = async () => (await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE subscription_id = $1", [subId]))[0]!.n;
    expect(await count()).toBe(25);
    // A new subscription of the same name starts empty.
    expect((await h.request("POST", "/subscriptions", { key: t.key, body: { name: "big" } })).status).toBe(201);
    expect((await h.request("GET", "/inbox?subscription=big", { key: t.key })).body.data).toEqual([]);
    // The purge removes at most batchSize deliveries per statement, then the row.
    const first = await purgeDeletedSubscriptions({ prisma: h.c.db.prisma }, { batchSize: 10, timeBudgetMs: 60_000, maxBatches: 1 });
    expect(first).toEqual({ deliveries: 10, subscriptions: 0 });
    expect(await count()).toBe(15);
    const rest = await purgeDeletedSubscriptions({ prisma: h.c.db.prisma }, { batchSize: 10, timeBudgetMs: 60_000 });
    expect(rest).toEqual({ deliveries: 15, subscriptions: 1 });
    expect(await h.sql("SELECT 1 FROM subscriptions WHERE id = $1", [subId])).toEqual([]);
    // The events and the other deliveries stay.
    expect((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1", [t.id]))[0]!.n).toBe(26);
    expect(await purgeDeletedSubscriptions({ prisma: h.c.db.prisma }, { batchSize: 10, timeBudgetMs: 60_000 })).toEqual({ deliveries: 0, subscriptions: 0 });
  });
});

describe("subscription purge in the running worker", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  test("the ingest worker removes a deleted subscription's deliveries and row by itself", async () => {
    const key = await h.key("sublim-worker");
    expect((await h.request("POST", "/subscriptions", { key, body: { name: "gone" } })).status).toBe(201);
    await seed(h, "sublim-worker", 30);
    const subId = (await h.sql<{ id: number }>("SELECT id FROM subscriptions WHERE tenant_id = 'sublim-worker' AND name = 'gone'"))[0]!.id;
    expect((await h.request("DELETE", "/subscriptions/gone", { key })).status).toBe(204);
    await h.eventually(async () => (await h.sql("SELECT 1 FROM subscriptions WHERE id = $1", [subId])).length === 0, 15_000);
    expect(await h.sql("SELECT 1 FROM deliveries WHERE subscription_id = $1", [subId])).toEqual([]);
    expect((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = 'sublim-worker'"))[0]!.n).toBe(30);
  });
});
