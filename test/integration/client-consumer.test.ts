import { Consumer, ConsumerError, TriggersClient, type InboxEvent } from "../../src/client/index";
import { startHarness, type Harness } from "../helpers/harness";
import { seed } from "./inbox-fixtures";
import { deadline } from "../helpers/deadlines";

/**
 * The client library against the real API (real Postgres, SQS emulator, ingest worker): two
 * Consumers share a 10 000-event load and handle each event exactly once; handlers that throw see
 * their events redelivered and then acked; a handler running past its visibility timeout keeps its
 * lease through heartbeats. No timing asserts: only what was delivered, and how often.
 */
describe("Consumer (client library)", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ env: { RATE_LIMIT_PER_MINUTE: "1000000", WORKER_RECEIVERS: "4" } });
  });
  // Closing drains the worker, the send batcher and the schema of a 10 000-event run: more than the default hook time on a busy runner.
  afterAll(() => h.close(), deadline(120_000));

  test("two consumers, 10 000 events: each handled once; 1% throw, are redelivered, then acked; a slow handler is extended", async () => {
    const tenant = "consumer-load";
    const key = await h.key(tenant);
    const producer = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const TOTAL = 10_000;
    const startedAt = Date.now();

    // 9 000 stored up front; 1 000 produced through the client (10 batches of 100) while the
    // consumers run, so those reach them through the worker and long-poll wake-ups.
    // Embedded PGlite serves every query on this process's one thread, beside the API, the worker
    // and both consumers: leases get more room there, so a busy loop is not mistaken for a crash.
    // On a busy machine (time factor > 1) an extend can take seconds to be answered: the lease is
    // scaled with the machine, the heartbeat is not, and the slow handler still outlasts two leases.
    const base = h.store === "pglite" ? { visibility: 20, heartbeat: 4 } : { visibility: 6, heartbeat: 1.5 };
    const visibility = Math.ceil(deadline(base.visibility * 1000) / 1000);
    const timing = { visibility, heartbeat: base.heartbeat, slowMs: Math.round(visibility * 2250) };
    const ids: string[] = await seed(h, tenant, 9_000);
    // Keyed, so a send whose answer is lost (a timeout on a busy machine) is retried without duplicates.
    const batches = Array.from({ length: 10 }, (_, b) => Array.from({ length: 100 }, (_, i) => ({ type: "load.test", payload: { n: b * 100 + i }, idempotency_key: `load-${b}-${i}` })));
    const produced = (async () => {
      for (const batch of batches) ids.push(...(await producer.sendBatch(batch)).map((a) => a.id));
    })();

    // 1% of the events throw on their first delivery; one event's handler outlives its 6 s lease.
    // Which events throw is decided by their payload: 90 of the stored ones and 10 of the produced ones.
    const throwsFirst = (e: InboxEvent) => {
      const p = e.payload as { i?: number; n?: number };
      return (p.i ?? p.n!) % 100 === 37;
    };
    const throwing = new Set<string>();
    const slowId = ids[5_000]!;
    const handled = new Map<string, number>(); // successful handler runs per id
    const attempts = new Map<string, number>(); // every handler run per id
    const seenLease = new Map<string, Set<string>>();
    const errors: ConsumerError[] = [];
    const lost: string[] = [];
    let allDone!: () => void;
    const finished = new Promise<void>((r) => (allDone = r));

    const handler = async (event: InboxEvent) => {
      attempts.set(event.id, (attempts.get(event.id) ?? 0) + 1);
      const leases = seenLease.get(event.id) ?? new Set<string>();
      leases.add(event.lease_id!);
      seenLease.set(event.id, leases);
      if (throwsFirst(event)) throwing.add(event.id);
      // The handler's first run fails (not "delivery 1": on a loaded machine a lease answer can be
      // lost in transit, and the event then first reaches a handler as delivery 2).
      if (throwsFirst(event) && attempts.get(event.id) === 1) throw new Error("first delivery fails");
      if (event.id === slowId) await new Promise((r) => setTimeout(r, timing.slowMs)); // more than twice the visibility timeout
      handled.set(event.id, (handled.get(event.id) ?? 0) + 1);
      if (handled.size === TOTAL) allDone();
    };
    const make = () => {
      const c = new Consumer({
        baseUrl: h.url,
        apiKey: key,
        handleMessage: handler,
        batchSize: 100,
        concurrency: 100,
        waitSeconds: 2,
        visibilityTimeout: timing.visibility,
        heartbeatIntervalSeconds: timing.heartbeat,
        nackDelaySeconds: () => 1,
      });
      c.on("error", (e) => errors.push(e));
      c.on("lease_lost", (e) => lost.push(e.id));
      return c;
    };
    const consumers = [make(), make()];
    const perConsumer = consumers.map(() => 0);
    consumers.forEach((c, i) => c.on("message_processed", () => perConsumer[i]!++));
    const failures: string[] = [];
    consumers[0]!.on("processing_error", (_err, e) => failures.push(e.id));
    consumers[1]!.on("processing_error", (_err, e) => failures.push(e.id));
    for (const c of consumers) c.start();
    let producedAt = 0;
    try {
      await produced;
      expect(new Set(ids).size).toBe(TOTAL);
      producedAt = Date.now();
      await finished;
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
    }
    process.stdout.write(`consumer load: produced in ${producedAt - startedAt} ms, consumed in ${Date.now() - producedAt} ms\n`);

    // Exactly once: every event's handler succeeded once, and every event is acknowledged.
    expect(handled.size).toBe(TOTAL);
    expect([...handled.values()].every((n) => n === 1)).toBe(true);
    expect(errors.map((e) => e.message)).toEqual([]);
    expect(lost).toEqual([]);
    // Both consumers took part.
    expect(perConsumer.every((n) => n > 0)).toBe(true);
    // The throwing 1%: failed once, redelivered (a new lease, delivery 2), then acked.
    expect(throwing.size).toBe(100);
    expect(failures.sort()).toEqual([...throwing].sort());
    for (const id of throwing) {
      expect([id, attempts.get(id), seenLease.get(id)!.size]).toEqual([id, 2, 2]);
    }
    // The slow handler kept its one lease: extended, never redelivered.
    expect([attempts.get(slowId), seenLease.get(slowId)!.size]).toEqual([1, 1]);
    const rows = await h.sql<{ status: string; delivery_count: number; n: number }>(
      "SELECT status::text, delivery_count, count(*)::int AS n FROM deliveries WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 2",
      [tenant],
    );
    expect(rows).toEqual([
      { status: "acknowledged", delivery_count: 1, n: TOTAL - throwing.size },
      { status: "acknowledged", delivery_count: 2, n: throwing.size },
    ]);
  }, deadline(300_000));

  test("stop() waits for running handlers and acks them; a stopped consumer leases nothing more", async () => {
    const tenant = "consumer-stop";
    const key = await h.key(tenant);
    const producer = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const [a] = await producer.sendBatch([{ type: "stop.test", payload: {} }]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const consumer = new Consumer({
      baseUrl: h.url,
      apiKey: key,
      waitSeconds: 20,
      handleMessage: async () => {
        started();
        await gate;
      },
    });
    const stopped = new Promise<void>((r) => consumer.once("stopped", r));
    consumer.start();
    await running;
    const stopping = consumer.stop();
    setTimeout(release, 200);
    await stopping;
    await stopped;
    expect(await h.sql("SELECT status::text FROM deliveries WHERE event_id = $1", [a!.id])).toEqual([{ status: "acknowledged" }]);
    // Sent after the stop: stays pending, nobody leased it.
    const [b] = await producer.sendBatch([{ type: "stop.test", payload: {} }]);
    await h.eventually(async () => (await h.sql("SELECT 1 FROM events WHERE id = $1", [b!.id])).length === 1);
    expect(await h.sql("SELECT status::text, delivery_count FROM deliveries WHERE event_id = $1", [b!.id])).toEqual([{ status: "pending", delivery_count: 0 }]);
  }, deadline(60_000));

  test("handleMessageBatch: one call per leased batch; a throwing batch is nacked whole and comes back", async () => {
    const tenant = "consumer-batch";
    const key = await h.key(tenant);
    const producer = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const sent = await producer.sendBatch(Array.from({ length: 30 }, (_, i) => ({ type: "batch.test", payload: { i } })));
    const done = new Set<string>();
    let calls = 0;
    let failedOnce = false;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    const consumer = new Consumer({
      baseUrl: h.url,
      apiKey: key,
      batchSize: 10,
      concurrency: 2,
      waitSeconds: 1,
      nackDelaySeconds: () => 0,
      handleMessageBatch: async (events) => {
        calls++;
        expect(events.length).toBeLessThanOrEqual(10);
        if (!failedOnce) {
          failedOnce = true;
          throw new Error("whole batch fails once");
        }
        for (const e of events) done.add(e.id);
        if (done.size === sent.length) finish();
      },
    });
    consumer.start();
    await all;
    await consumer.stop();
    expect(done.size).toBe(30);
    expect(calls).toBeGreaterThanOrEqual(4);
    const rows = await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1 AND status = 'acknowledged'", [tenant]);
    expect(rows[0]!.n).toBe(30);
  }, deadline(60_000));
  test("empty polls back off: waitSeconds 0 on an empty inbox polls a bounded number of times, and an event sent then is still handled", async () => {
    const tenant = "consumer-idle";
    const key = await h.key(tenant);
    const handled: string[] = [];
    let empty = 0;
    let got!: () => void;
    const gotOne = new Promise<void>((r) => (got = r));
    const consumer = new Consumer({
      baseUrl: h.url,
      apiKey: key,
      waitSeconds: 0,
      handleMessage: async (e) => {
        handled.push(e.id);
        got();
      },
    });
    consumer.on("empty", () => empty++);
    consumer.start();
    try {
      // The measurement is a window of time: the polls an idle consumer makes in it.
      await new Promise((r) => setTimeout(r, 4_000));
      process.stdout.write(`idle consumer, waitSeconds 0: ${empty} empty polls in 4 s\n`);
      // Backoff from 100 ms doubling to 5 s with jitter: at most ~9 polls in 4 s (busy polling made hundreds).
      expect(empty).toBeGreaterThanOrEqual(3);
      expect(empty).toBeLessThanOrEqual(12);
      const [sent] = await new TriggersClient({ baseUrl: h.url, apiKey: key }).sendBatch([{ type: "idle.test", payload: {} }]);
      const sentAt = Date.now();
      await gotOne;
      // The backoff is capped (5 s): the idle consumer still finds new work soon after it arrives.
      expect(Date.now() - sentAt).toBeLessThan(15_000);
      expect(handled).toEqual([sent!.id]);
    } finally {
      await consumer.stop();
    }
  }, deadline(60_000));

  test("a Consumer on subscription X leases, acks and nacks only X's deliveries", async () => {
    const tenant = "consumer-subscription";
    const key = await h.key(tenant);
    const created = await h.request("POST", "/subscriptions", { key, body: { name: "billing", filter: { types: ["order.paid"] } } });
    expect(created.status).toBe(201);
    const producer = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const sent = await producer.sendBatch([
      ...Array.from({ length: 3 }, (_, i) => ({ type: "order.paid", payload: { i } })),
      ...Array.from({ length: 3 }, (_, i) => ({ type: "order.created", payload: { i } })),
    ]);
    const paid = sent.slice(0, 3).map((a) => a.id);
    const seen: Array<[string, string]> = [];
    let failedOnce = false;
    let finish!: () => void;
    const all = new Promise<void>((r) => (finish = r));
    const consumer = new Consumer({
      baseUrl: h.url,
      apiKey: key,
      subscription: "billing",
      waitSeconds: 1,
      nackDelaySeconds: () => 0,
      handleMessage: async (e) => {
        seen.push([e.id, e.type]);
        // One nack on the way, so nack is exercised on the subscription too.
        if (!failedOnce) {
          failedOnce = true;
          throw new Error("first one fails once");
        }
        if (paid.every((id) => seen.filter(([s]) => s === id).length > 0) && seen.length >= 4) finish();
      },
    });
    const errors: ConsumerError[] = [];
    consumer.on("error", (e) => errors.push(e));
    consumer.start();
    await all;
    await consumer.stop();
    expect(errors.map((e) => e.message)).toEqual([]);
    expect(seen.every(([, type]) => type === "order.paid")).toBe(true);
    expect(new Set(seen.map(([id]) => id))).toEqual(new Set(paid));
    const rows = await h.sql<{ name: string; status: string; n: number }>(
      "SELECT s.name, d.status::text AS status, count(*)::int AS n FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE d.tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
      [tenant],
    );
    // billing's three are acknowledged; the default subscription's six deliveries are untouched.
    expect(rows).toEqual([
      { name: "billing", status: "acknowledged", n: 3 },
      { name: "default", status: "pending", n: 6 },
    ]);
  }, deadline(60_000));
});
