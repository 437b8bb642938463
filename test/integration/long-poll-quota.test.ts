import { connect, type Socket } from "node:net";
import { startHarness, type Harness } from "../helpers/harness";
import { idsOf, seed } from "./inbox-fixtures";

jest.setTimeout(60_000);

/**
 * Long polls as a bounded, shared resource: quotas per API key and per tenant answered with 429 at
 * once, /healthz answered even when the connection cap is full, wake-ups that scale with events
 * (not with waiters), and one shared safety re-check per (tenant, subscription, filter).
 * Assertions are about what is answered and how many waiters were woken, never about how fast.
 */
describe("long polls: quotas, connection reserve, wake-ups per event", () => {
  let h: Harness;
  let n = 0;
  const PER_KEY = 5;
  const PER_TENANT = 8;
  const CAP = 30;
  const tenant = async () => {
    const id = `lpq-${++n}`;
    return { id, key: await h.key(id), key2: await h.key(id) };
  };
  const waiters = (count: number) => h.eventually(async () => h.api.deps.wakeups.waiting >= count, 10_000);
  /** Opens a long poll that can be ended from the test (the client going away). */
  const poll = (key: string, query: string) => {
    const abort = new AbortController();
    let settled = false;
    const answer = fetch(`${h.url}/inbox?${query}`, { headers: { Authorization: `Bearer ${key}` }, signal: abort.signal })
      .then(async (r) => ({ status: r.status, body: (await r.json()) as any }))
      .catch(() => ({ status: 0, body: undefined as any }))
      .finally(() => (settled = true));
    return { answer, end: () => abort.abort(), settled: () => settled };
  };

  beforeAll(async () => {
    h = await startHarness({
      env: {
        LONG_POLLS_PER_KEY: String(PER_KEY),
        LONG_POLLS_PER_TENANT: String(PER_TENANT),
        HTTP_MAX_CONNECTIONS: String(CAP),
        LONG_POLL_RECHECK_MS: "200",
        RATE_LIMIT_PER_MINUTE: "100000",
      },
    });
  });
  afterAll(() => h.close());

  test("past the key's and then the tenant's quota a long poll gets 429 long_poll_quota_exceeded at once; a slot frees when a poll ends", async () => {
    const t = await tenant();
    const held = Array.from({ length: PER_KEY }, () => poll(t.key, "wait_seconds=20"));
    await waiters(PER_KEY);
    const refused = await h.request("GET", "/inbox?wait_seconds=20", { key: t.key });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("long_poll_quota_exceeded");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // A request that does not wait is not a long poll: still served.
    expect((await h.request("GET", "/inbox", { key: t.key })).status).toBe(200);
    // Another key of the tenant may wait until the tenant's quota is reached.
    const more = Array.from({ length: PER_TENANT - PER_KEY }, () => poll(t.key2, "wait_seconds=20"));
    await waiters(PER_TENANT);
    const tenantRefused = await h.request("GET", "/inbox?wait_seconds=20", { key: t.key2 });
    expect(tenantRefused.status).toBe(429);
    expect(tenantRefused.body.error.code).toBe("long_poll_quota_exceeded");
    // One poll ends: its key may wait again.
    held[0]!.end();
    await held[0]!.answer;
    await h.eventually(async () => (await h.request("GET", "/inbox?wait_seconds=1", { key: t.key })).status === 200);
    for (const p of [...held, ...more]) p.end();
    await Promise.all([...held, ...more].map((p) => p.answer));
    await h.eventually(async () => h.api.deps.wakeups.waiting === 0);
  });

  test("a tenant holding its whole quota of idle waiters, and refused past it, changes nothing for another tenant", async () => {
    const hostile = await tenant();
    const ordinary = await tenant();
    const ids = await seed(h, ordinary.id, 3);
    const peek = "/inbox?mode=peek&limit=10";
    const before = await h.request("GET", peek, { key: ordinary.key });
    expect(idsOf(before.body)).toEqual(ids);

    const held = [...Array.from({ length: PER_KEY }, () => poll(hostile.key, "wait_seconds=20")), ...Array.from({ length: PER_TENANT - PER_KEY }, () => poll(hostile.key2, "wait_seconds=20"))];
    await waiters(PER_TENANT);
    const refusals = await Promise.all(Array.from({ length: 10 }, (_, i) => h.request("GET", "/inbox?wait_seconds=20", { key: i % 2 ? hostile.key : hostile.key2 })));
    expect(refusals.map((r) => r.status)).toEqual(Array(10).fill(429));

    const after = await h.request("GET", peek, { key: ordinary.key });
    expect(after.status).toBe(200);
    expect(after.body).toEqual(before.body);
    expect((await h.request("GET", "/healthz")).status).toBe(200);
    const leased = await h.request("GET", "/inbox?limit=1", { key: ordinary.key });
    expect(idsOf(leased.body)).toEqual([ids[0]]);
    // The ordinary tenant's own long poll is admitted and woken by its event.
    const waiting = poll(ordinary.key, "wait_seconds=20&type=ordinary.wanted");
    await waiters(PER_TENANT + 1);
    const posted = await h.request("POST", "/events", { key: ordinary.key, body: { type: "ordinary.wanted", payload: {} } });
    expect(posted.status).toBe(202);
    const woken = await waiting.answer;
    expect(woken.status).toBe(200);
    expect(idsOf(woken.body)).toEqual([posted.body.id]);
    for (const p of held) p.end();
    await Promise.all(held.map((p) => p.answer));
    await h.eventually(async () => h.api.deps.wakeups.waiting === 0);
  });

  test("a notification wakes at most as many waiters as it has events", async () => {
    const t = await tenant();
    const polls = [...Array.from({ length: PER_KEY }, () => poll(t.key, "wait_seconds=20&limit=1")), ...Array.from({ length: PER_TENANT - PER_KEY }, () => poll(t.key2, "wait_seconds=20&limit=1"))];
    await waiters(PER_TENANT);
    const stats = h.api.deps.wakeups.stats;
    const before = { ...stats };
    const posted = await h.request("POST", "/events/batch", { key: t.key, body: { events: [{ type: "two", payload: {} }, { type: "two", payload: {} }] } });
    expect(posted.status).toBe(202);
    const expected = (posted.body.data as Array<{ id: string }>).map((e) => e.id);
    // Two waiters answer, one event each; the others keep waiting.
    await h.eventually(async () => polls.filter((p) => p.settled()).length === 2, 10_000);
    expect(h.api.deps.wakeups.waiting).toBe(PER_TENANT - 2);
    // Re-checks run every 200 ms here; what they woke is counted apart. When the two events are stored
    // by two group commits (a busy worker), the waiter woken by the first may lease while the second
    // is already there: its full page with more behind it hands one wake-up on, so at most one more
    // than the events, never the eight waiters.
    expect(stats.woken - stats.recheckWoken - (before.woken - before.recheckWoken)).toBeLessThanOrEqual(expected.length + 1);
    for (const p of polls) p.end();
    const answers = await Promise.all(polls.map((p) => p.answer));
    const got = answers.flatMap((a) => (a.status === 200 ? idsOf(a.body) : []));
    expect(got.sort()).toEqual([...expected].sort());
  });

  test("idle waiters of one key share one re-check statement per interval, which wakes nobody while nothing of theirs is deliverable", async () => {
    const t = await tenant();
    // A backlog of another type: deliverable, but not to these waiters.
    await seed(h, t.id, Array.from({ length: 50 }, () => ({ type: "not.wanted" })));
    const polls = Array.from({ length: PER_KEY }, () => poll(t.key, "wait_seconds=20&type=wanted"));
    await waiters(PER_KEY);
    const stats = h.api.deps.wakeups.stats;
    const before = { ...stats };
    await h.eventually(async () => stats.safetyChecks - before.safetyChecks >= 4, 10_000);
    expect(stats.woken - before.woken).toBe(0);
    // One statement per re-check for this one key (other tests' keys are gone by now).
    expect(stats.recheckStatements - before.recheckStatements).toBeLessThanOrEqual(stats.safetyChecks - before.safetyChecks + 1);
    // A new long poll on the key the re-check found empty waits without a lease of its own.
    const skippedBefore = stats.attemptsSkipped;
    const extra = poll(t.key2, "wait_seconds=20&type=wanted");
    await h.eventually(async () => stats.attemptsSkipped > skippedBefore);
    // And is still handed what arrives.
    const [id] = await seed(h, t.id, [{ type: "wanted" }]);
    // Seeded without a notification: the shared re-check finds it and wakes one waiter, which takes it.
    await h.eventually(async () => [...polls, extra].filter((p) => p.settled()).length === 1, 10_000);
    for (const p of [...polls, extra]) p.end();
    const answers = await Promise.all([...polls, extra].map((p) => p.answer));
    expect(answers.flatMap((a) => (a.status === 200 ? idsOf(a.body) : []))).toEqual([id]);
  });
  // Last: connections accepted while the server was full stay reserve connections (one request each).
  test("with the connection cap full, /healthz is still answered and other requests are refused with 503", async () => {
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect(h.api.port, "127.0.0.1", () => resolve(s));
        s.once("error", reject);
      });
    const ask = (s: Socket, request: string) =>
      new Promise<string>((resolve) => {
        let data = "";
        s.on("data", (d: Buffer) => {
          data += String(d);
          if (/\r\n\r\n[\s\S]*\}/.test(data)) resolve(data);
        });
        s.once("close", () => resolve(data));
        s.write(request);
      });
    const held: Socket[] = [];
    try {
      // Up to the cap, counting the connections the test's own fetch keeps alive.
      const connections = () => new Promise<number>((r) => h.api.server.getConnections((_e, c) => r(c)));
      while ((await connections()) < CAP) held.push(await open());
      const health = await open();
      const answer = await ask(health, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      health.destroy();
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      const other = await open();
      const refused = await ask(other, "GET /inbox?mode=peek HTTP/1.1\r\nHost: x\r\n\r\n");
      other.destroy();
      expect(refused).toMatch(/^HTTP\/1\.1 503/);
      expect(refused).toContain("service_unavailable");
      // The documented 503: its request id and Retry-After, like every answer of the API.
      expect(refused).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/i);
      expect(refused).toMatch(/\r\nRetry-After: 1\r\n/i);
    } finally {
      for (const s of held) s.destroy();
    }
    await h.eventually(async () => (await h.request("GET", "/inbox?mode=peek", { key: (await tenant()).key })).status === 200);
  });
});
