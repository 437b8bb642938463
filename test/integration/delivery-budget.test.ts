import { TriggersClient, TriggersError } from "../../src/client/index";
import { createSubscription, ensureDefaultSubscriptions } from "../../src/store/subscriptions";
import { startHarness, type Harness } from "../helpers/harness";

/**
 * The delivery-rows budget in one API process (no Redis: the per-process count), as the document
 * describes it: events cost 1 + the tenant's live subscriptions, a batch is admitted or refused
 * whole, the 429 names the budget, and the client library surfaces its Retry-After.
 */
const BUDGET = 1000;

describe("delivery-rows budget", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { DELIVERY_ROWS_PER_MINUTE_PER_TENANT: String(BUDGET) } });
  });
  afterAll(async () => {
    await h.close();
  });

  const batch = (n: number) => ({ events: Array.from({ length: n }, (_, i) => ({ type: "budget.item", payload: { i } })) });

  test("a tenant with 4 subscriptions pays 5 rows an event: two batches of 100 fit, the third is refused whole; another tenant is not affected", async () => {
    await ensureDefaultSubscriptions(h.c.db.prisma, ["heavy"]);
    for (const name of ["s1", "s2", "s3"]) await createSubscription(h.c.db.prisma, "heavy", name, {}, 100);
    const heavy = await h.key("heavy");
    const light = await h.key("light");
    expect((await h.request("POST", "/events/batch", { key: heavy, body: batch(100) })).status).toBe(202);
    expect((await h.request("POST", "/events/batch", { key: heavy, body: batch(100) })).status).toBe(202);
    const before = await h.c.queue.depth();
    const refused = await h.request("POST", "/events/batch", { key: heavy, body: batch(1) });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("delivery_rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get("ratelimit-policy")).toBe(`"delivery-rows";q=${BUDGET};w=60`);
    expect(refused.headers.get("ratelimit")).toMatch(/^"delivery-rows";r=0;t=\d+$/);
    const single = await h.request("POST", "/events", { key: heavy, body: { type: "budget.one", payload: {} } });
    expect([single.status, single.body.error.code]).toEqual([429, "delivery_rate_limited"]);
    // Nothing of the refused requests reached the queue.
    const after = await h.c.queue.depth();
    expect(after.visible + after.inFlight).toBe(before.visible + before.inFlight);
    // A tenant with one subscription (2 rows an event) has its own budget.
    for (let i = 0; i < 5; i++) expect((await h.request("POST", "/events", { key: light, body: { type: "budget.light", payload: { i } } })).status).toBe(202);
  });

  test("a batch whose cost exceeds what is left is refused, while a cheaper request still fits", async () => {
    const key = await h.key("fits");
    // 2 rows an event: 4 × 200 + 120 admitted, 80 left; 41 events (82 rows) refused, 40 (80 rows) admitted.
    for (let i = 0; i < 4; i++) expect((await h.request("POST", "/events/batch", { key, body: batch(100) })).status).toBe(202);
    expect((await h.request("POST", "/events/batch", { key, body: batch(60) })).status).toBe(202);
    expect((await h.request("POST", "/events/batch", { key, body: batch(41) })).status).toBe(429);
    expect((await h.request("POST", "/events/batch", { key, body: batch(40) })).status).toBe(202);
    expect((await h.request("POST", "/events", { key, body: { type: "budget.last", payload: {} } })).status).toBe(429);
  });

  test("the client library gets a typed 429 with the Retry-After it would wait", async () => {
    const key = await h.key("client");
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key, maxRetries: 0 });
    await client.sendBatch(Array.from({ length: 100 }, (_, i) => ({ type: "budget.client", payload: { i } })));
    for (let i = 0; i < 4; i++) await client.sendBatch(Array.from({ length: 100 }, (_, j) => ({ type: "budget.client", payload: { i, j } })));
    const err = (await client.send({ type: "budget.client", payload: {} }).catch((e: unknown) => e)) as TriggersError;
    expect(err).toBeInstanceOf(TriggersError);
    expect([err.status, err.code]).toEqual([429, "delivery_rate_limited"]);
    expect(err.retryAfterSeconds).toBeGreaterThan(0);
  });
});
