import { startHarness, type Harness } from "../helpers/harness";
import { counterTotal } from "../helpers/metrics";
import { startIngestWorker } from "../../src/roles/worker";
import { IdempotencyGuard } from "../../src/ingest/idempotency";

const ev = (payload: Record<string, unknown>) => ({ type: "order.created", payload });
const storedRow = (h: Harness, tenant: string, key: string) =>
  h.sql<{ id: string; payload: unknown; received_at: Date }>("SELECT id, payload, received_at FROM events WHERE tenant_id = $1 AND idempotency_key = $2", [tenant, key]);

/**
 * The fast path (Redis, or the in-process map) can lose a claim at any time: TTL, flush, eviction,
 * failover, restart. Postgres's unique (tenant, key) is the durable record and must always win.
 */
async function claimLostScenario(h: Harness, tenant: string, forget: () => Promise<void>): Promise<void> {
  const key = await h.key(tenant);
  const k = `order-${Date.now()}`;
  const post = (payload: Record<string, unknown>) => h.request("POST", "/events", { key, body: ev(payload), headers: { "Idempotency-Key": k } });
  const x = await post({ x: 1 });
  expect(x.status).toBe(202);
  await h.eventually(async () => (await storedRow(h, tenant, k)).length === 1);
  await forget();
  for (let i = 0; i < 3; i++) {
    const y = await post({ y: 2 });
    expect(y.status).toBe(409);
    expect(y.body.error.code).toBe("idempotency_key_reused");
  }
  const again = await post({ x: 1 });
  expect(again.status).toBe(202);
  expect(again.headers.get("idempotent-replayed")).toBe("true");
  expect(again.body.id).toBe(x.body.id);
  // Replays answer the stored received_at, not the time of the retry.
  expect(again.body.received_at).toBe(x.body.received_at);
  await new Promise((r) => setTimeout(r, 300));
  const rows = await storedRow(h, tenant, k);
  expect(rows).toHaveLength(1);
  expect(rows[0]!.payload).toEqual({ x: 1 });
  expect(rows[0]!.received_at.toISOString()).toBe(x.body.received_at);
}

describe("idempotency: Postgres wins over a lost fast-path claim (Redis)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h.close());

  test("after the Redis claim is deleted, another body is 409 every time and the original replays", async () => {
    await claimLostScenario(h, "idem-redis", async () => {
      const keys = await h.c.redis!.keys(`${h.config.redisPrefix}:idem:*`);
      expect(keys.length).toBeGreaterThan(0);
      await h.c.redis!.del(...keys);
    });
  });

  test("a replay answered from the fast path carries the first send's received_at", async () => {
    const key = await h.key("idem-replay-time");
    const post = () => h.request("POST", "/events", { key, body: ev({ a: 1 }), headers: { "Idempotency-Key": "same-time" } });
    const first = await post();
    expect(first.headers.get("idempotency-pending")).toBeNull(); // Redis holds the claim: confirmed
    await new Promise((r) => setTimeout(r, 20));
    const retry = await post();
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body.received_at).toBe(first.body.received_at);
  });

  test("fast-path claims are bounded in time (their loss is harmless), well under 24 h", async () => {
    const key = await h.key("idem-ttl");
    expect((await h.request("POST", "/events", { key, body: ev({ a: 1 }), headers: { "Idempotency-Key": "ttl-1" } })).status).toBe(202);
    const keys = await h.c.redis!.keys(`${h.config.redisPrefix}:idem:*idem-ttl*`);
    expect(keys).toHaveLength(1);
    const ttl = await h.c.redis!.ttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3600);
  });
});

describe("idempotency: one tenant cannot fill the shared Redis", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, worker: false });
  });
  afterAll(() => h.close());

  test("past its claim budget a tenant's new keys are claimed in process only; other tenants keep the shared fast path", async () => {
    const guard = new IdempotencyGuard(h.c.db.prisma, h.c.redis, h.config.redisPrefix, undefined, undefined, { ttlSeconds: 60, claimsPerTenant: 5, claimsTotal: 1000 });
    const now = new Date().toISOString();
    const verdicts = [];
    for (let i = 0; i < 8; i++) verdicts.push(await guard.reserve("greedy", `k-${i}`, "a".repeat(64), now));
    expect(verdicts.map((v) => v.kind)).toEqual(Array(8).fill("new"));
    expect(verdicts.map((v) => (v as { shared: boolean }).shared)).toEqual([true, true, true, true, true, false, false, false]);
    expect(await h.c.redis!.keys(`${h.config.redisPrefix}:idem:6:greedy:*`)).toHaveLength(5);
    // Claims over the budget still settle this process's retries and conflicts.
    expect((await guard.reserve("greedy", "k-7", "a".repeat(64), now)).kind).toBe("replay");
    expect((await guard.reserve("greedy", "k-7", "b".repeat(64), now)).kind).toBe("conflict");
    // Another tenant is not affected.
    expect(await guard.reserve("modest", "k-0", "a".repeat(64), now)).toEqual({ kind: "new", receivedAt: now, shared: true });
  });
});

describe("idempotency: many tenants together cannot fill the shared Redis", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, worker: false });
  });
  afterAll(() => h.close());

  test("past the global claim budget every tenant's new keys are claimed in process only; existing claims still answer", async () => {
    const prefix = `${h.config.redisPrefix}:global`;
    const guard = new IdempotencyGuard(h.c.db.prisma, h.c.redis, prefix, undefined, undefined, { ttlSeconds: 60, claimsPerTenant: 5, claimsTotal: 7 });
    const now = new Date().toISOString();
    const shared = async (tenant: string, key: string, hash = "a".repeat(64)) => {
      const v = await guard.reserve(tenant, key, hash, now);
      return v.kind === "new" ? v.shared : v.kind;
    };
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await shared("t-one", `k-${i}`));
    for (let i = 0; i < 4; i++) first.push(await shared("t-two", `k-${i}`));
    // Each tenant is within its own budget (5), but together they reach the global one (7).
    expect(first).toEqual([true, true, true, true, true, true, true, false]);
    expect(await shared("t-three", "k-0")).toBe(false);
    expect(await h.c.redis!.keys(`${prefix}:idem:*`)).toHaveLength(7);
    // Claims in Redis still settle retries and conflicts from any process; those in memory, this process's.
    expect(await shared("t-two", "k-0")).toBe("replay");
    expect(await shared("t-two", "k-0", "b".repeat(64))).toBe("conflict");
    expect(await shared("t-two", "k-3")).toBe("replay");
    const other = new IdempotencyGuard(h.c.db.prisma, h.c.redis, prefix, undefined, undefined, { ttlSeconds: 60, claimsPerTenant: 5, claimsTotal: 7 });
    expect((await other.reserve("t-one", "k-0", "b".repeat(64), now)).kind).toBe("conflict");
  });
});

describe("idempotency without Redis: a restart forgets the in-process claims", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  test("after the process forgets its claims, another body is 409 every time and the original replays", async () => {
    // A restart without Redis is modelled by clearing the API's in-process fast path.
    await claimLostScenario(h, "idem-local", async () => h.api.deps.idempotency.forgetLocalClaims());
  });
});

describe("idempotency without a shared fast path: two API processes, two bodies, one key", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("the body that loses the race is not dropped silently: logged and left for the dead-letter queue", async () => {
    const tenant = "idem-race";
    const key = await h.key(tenant);
    const post = (payload: Record<string, unknown>) => h.request("POST", "/events", { key, body: ev(payload), headers: { "Idempotency-Key": "race-1" } });
    // Process A accepts X; process B (which has not seen A's claim, and finds nothing stored yet) accepts Y.
    const x = await post({ x: 1 });
    expect(x.status).toBe(202);
    h.api.deps.idempotency.forgetLocalClaims();
    const y = await post({ y: 2 });
    expect(y.status).toBe(202);
    // Both 202s say so: without a shared fast path, a keyed send is accepted pending the uniqueness check.
    expect(x.headers.get("idempotency-pending")).toBe("true");
    expect(y.headers.get("idempotency-pending")).toBe("true");

    // Through the real receive path: one receiver, and a short visibility so the kept message comes back soon.
    const worker = startIngestWorker(h.c, { receivers: 1, visibilitySeconds: 1 });
    try {
      await h.eventually(async () => (await storedRow(h, tenant, "race-1")).length === 1 && h.logs.some((l) => /idempotency conflict/i.test(l) && l.includes(tenant)), 10_000);
    } finally {
      await worker.stop();
    }
    const rows = await storedRow(h, tenant, "race-1");
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toEqual({ x: 1 });
    expect(await counterTotal(h.c.metrics.workerRowsInserted)).toBe(1);
    expect(await counterTotal(h.c.metrics.workerPoison)).toBeGreaterThanOrEqual(1);
    // The loser's message was not deleted: it comes back after its visibility timeout, or (after
    // maxReceiveCount receives on a slow machine) it is in the dead-letter queue already.
    const isLoser = (m: { body: string | undefined }) => m.body?.includes('"y"') === true;
    const back = await h.eventually(async () => {
      const main = await h.c.queue.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 30 });
      const dead = (await h.c.dlq?.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })) ?? [];
      return [...main, ...dead].find(isLoser);
    }, 15_000);
    expect(back.receiveCount).toBeGreaterThanOrEqual(2);
    // The retry of the losing body now answers 409: Postgres holds X.
    expect((await post({ y: 2 })).status).toBe(409);
  });
});
