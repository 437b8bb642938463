import { buildContainer, type Container } from "../../src/container";
import type { RunningApi } from "../../src/api/server";
import { startApiRole } from "../../src/roles/api";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed, sleep } from "./inbox-fixtures";

/**
 * GET /inbox?wait_seconds: waiting requests are answered by wake-ups (worker commit, nack, lease
 * expiry), not by polling. Assertions are about what is delivered, not about how fast.
 */
describe("GET /inbox?wait_seconds (long polling)", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `lp-${++n}`;
    return { id, key: await h.key(id) };
  };
  /** Resolves once the API process has `count` waiters registered (the request is really waiting). */
  const waiters = (count: number, api: RunningApi = h.api) => h.eventually(async () => api.deps.wakeups.waiting >= count, 10_000);

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  test("answers at once when something is deliverable, and an empty page after a wait with nothing", async () => {
    const t = await tenant();
    const [id] = await seed(h, t.id, 1);
    const now = await h.request("GET", "/inbox?wait_seconds=20", { key: t.key });
    expect(idsOf(now.body)).toEqual([id]);
    const empty = await h.request("GET", "/inbox?wait_seconds=1", { key: t.key });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ data: [], has_more: false });
  });

  test("a waiting request is handed the event the worker stores, matching its filters only", async () => {
    const t = await tenant();
    const waiting = h.request("GET", "/inbox?wait_seconds=20&type=order.paid", { key: t.key });
    await waiters(1);
    const before = { ...h.api.deps.wakeups.stats };
    // Another type of the same tenant: the notification names it, so the waiter is not even woken.
    const other = await h.request("POST", "/events", { key: t.key, body: { type: "order.created", payload: {} } });
    await h.eventually(async () => (await h.sql("SELECT 1 FROM events WHERE id = $1", [other.body.id])).length === 1);
    await h.eventually(async () => h.api.deps.wakeups.stats.notifications > 0);
    const posted = await h.request("POST", "/events", { key: t.key, body: { type: "order.paid", payload: { n: 1 } } });
    expect(posted.status).toBe(202);
    const r = await waiting;
    expect(r.status).toBe(200);
    expect(idsOf(r.body)).toEqual([posted.body.id]);
    expect(r.body.data[0]).toMatchObject({ status: "delivered", lease_id: expect.any(String) });
    // Woken once by the matching commit (plus once per safety re-check that happened to run).
    const stats = h.api.deps.wakeups.stats;
    expect(stats.woken - before.woken).toBeGreaterThanOrEqual(1);
    expect(stats.woken - before.woken).toBeLessThanOrEqual(1 + stats.safetyChecks - before.safetyChecks);
    expect(h.api.deps.wakeups.waiting).toBe(0);
  });

  test("a lease that expires and a nack delay that comes due wake the waiter", async () => {
    const t = await tenant();
    const [a, b] = await seed(h, t.id, 2);
    const leased = await h.request("GET", "/inbox?visibility_timeout=1&limit=2", { key: t.key });
    expect(idsOf(leased.body)).toEqual([a, b]);
    // b is nacked with a delay (its lease ends, it comes back in 2 s); a's lease expires in 1 s.
    const nack = await h.request("POST", `/events/${b}/nack`, { key: t.key, body: { delay_seconds: 2, lease_id: leased.body.data[1].lease_id } });
    expect(nack.status).toBe(200);
    const first = await h.request("GET", "/inbox?wait_seconds=15&limit=1&visibility_timeout=60", { key: t.key });
    expect(idsOf(first.body)).toEqual([a]);
    const second = await h.request("GET", "/inbox?wait_seconds=15&limit=1&visibility_timeout=60", { key: t.key });
    expect(idsOf(second.body)).toEqual([b]);
    expect(second.body.data[0].delivery_count).toBe(2);
  });

  test("a client that disconnects while waiting leases nothing", async () => {
    const t = await tenant();
    const abort = new AbortController();
    const gone = fetch(`${h.url}/inbox?wait_seconds=20`, { headers: { Authorization: `Bearer ${t.key}` }, signal: abort.signal }).catch((e: unknown) => e);
    await waiters(1);
    abort.abort();
    await gone;
    await h.eventually(async () => h.api.deps.wakeups.waiting === 0);
    const [id] = await seed(h, t.id, 1);
    // A wake-up for this tenant now finds no waiter; the event stays pending for the next consumer.
    h.api.deps.wakeups.wakeTenant(t.id);
    await sleep(200);
    expect(await h.sql("SELECT status::text, delivery_count FROM deliveries WHERE event_id = $1", [id])).toEqual([{ status: "pending", delivery_count: 0 }]);
    expect(idsOf((await h.request("GET", "/inbox", { key: t.key })).body)).toEqual([id]);
  });

  test("waits are tenant-isolated: another tenant's event does not answer the waiter", async () => {
    const mine = await tenant();
    const theirs = await tenant();
    const waiting = h.request("GET", "/inbox?wait_seconds=2", { key: mine.key });
    await waiters(1);
    await h.request("POST", "/events", { key: theirs.key, body: { type: "x", payload: {} } });
    expect((await waiting).body).toEqual({ data: [], has_more: false });
  });

  onlyOn("postgres", "a second API process needs a database it can share").test("several API processes: a waiter on another process is woken by this worker's commit", async () => {
    const t = await tenant();
    // A second API process on the same database (no worker of its own).
    const c2: Container = await buildContainer(h.config, { poolSize: 2 });
    const api2 = (await startApiRole(c2, { metricsServer: false, queueDepth: false })).api;
    try {
      const waiting = fetch(`http://127.0.0.1:${api2.port}/inbox?wait_seconds=20`, { headers: { Authorization: `Bearer ${t.key}` } }).then((r) => r.json());
      await waiters(1, api2);
      const posted = await h.request("POST", "/events", { key: t.key, body: { type: "cross.process", payload: {} } });
      const body = (await waiting) as { data: Array<{ id: string }> };
      expect(idsOf(body)).toEqual([posted.body.id]);
    } finally {
      await api2.close();
      await c2.close();
    }
  });

  onlyOn("postgres", "it starts a second API process on the same database").test("shutdown answers waiting requests at once with an empty page, asking their connections to close", async () => {
    const t = await tenant();
    const c2: Container = await buildContainer(h.config, { poolSize: 2 });
    const api2 = (await startApiRole(c2, { metricsServer: false, queueDepth: false })).api;
    try {
      const waiting = fetch(`http://127.0.0.1:${api2.port}/inbox?wait_seconds=20`, { headers: { Authorization: `Bearer ${t.key}` } }).then(async (r) => ({ status: r.status, connection: r.headers.get("connection"), body: await r.json() }));
      await waiters(1, api2);
      const started = Date.now();
      await api2.close();
      const r = await waiting;
      // The keep-alive connection it was in flight on is told to close, and is closed.
      expect(r).toEqual({ status: 200, connection: "close", body: { data: [], has_more: false } });
      // Far below the 20 s wait and the keep-alive timeout: close did not sit either out.
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await c2.close();
    }
  });

  test("idle waiters cost no query per waiter: only the per-process safety re-check runs", async () => {
    const t = await tenant();
    const before = { ...h.api.deps.wakeups.stats };
    const all = Promise.all(Array.from({ length: 20 }, () => h.request("GET", "/inbox?wait_seconds=2", { key: t.key })));
    await waiters(20);
    const results = await all;
    for (const r of results) expect(r.body).toEqual({ data: [], has_more: false });
    // Nobody was woken, so each waiter made exactly its one initial lease attempt; the tenant has
    // nothing deliverable, so even a safety re-check woke nobody.
    expect(h.api.deps.wakeups.stats.woken - before.woken).toBe(0);
  });
});
