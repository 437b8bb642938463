import { Redis } from "ioredis";
import { leaseSize, SharedWindowLimiter } from "../../src/api/middleware/shared-window";
import { TcpProxy } from "../helpers/tcp-proxy";
import { AcceptedReceipts, RECEIPTS_WRITE_INTERVAL_MS } from "../../src/ingest/accepted-receipts";
import { TEST_REDIS_URL } from "../helpers/env";
import { uniqueName } from "../helpers/harness";

// Two clients stand for two API processes sharing one Redis.
const clients: Redis[] = [];
const client = () => {
  const r = new Redis(TEST_REDIS_URL, { commandTimeout: 2000, enableAutoPipelining: true, lazyConnect: false });
  clients.push(r);
  return r;
};
const prefix = uniqueName("limits");
const ready = (c: Redis) => new Promise<void>((resolve) => (c.status === "ready" ? resolve() : c.once("ready", () => resolve())));

/** Receipts written through one connected client and read through another, as two API processes would. */
async function writerAndReader(): Promise<{ r: Redis; writer: AcceptedReceipts; reader: AcceptedReceipts }> {
  const r = client();
  const other = client();
  await Promise.all([ready(r), ready(other)]);
  return { r, writer: new AcceptedReceipts(r, prefix), reader: new AcceptedReceipts(other, prefix) };
}

/**
 * What Redis itself receives for a tenant's receipts, through MONITOR: the number of receipts of
 * each script call that writes to the tenant's set. Stop it with `stop()` (MONITOR's lines trail
 * the replies, so it waits for them first).
 */
async function receiptCalls(tenant: string): Promise<{ calls: number[]; stop(): Promise<void> }> {
  const calls: number[] = [];
  const mine = `${prefix}:acc:${tenant.length}:${tenant}:`;
  // MONITOR lists every client's commands on this server, another suite's too. ioredis reports a line
  // that reaches it while the connection is not yet (or no longer) in monitor mode as a stray reply
  // (an "error" event); such a line is lost, not misread, and a lost call of this test's own fails
  // the count below. The connection is built here, not with redis.monitor(), so that the listeners
  // are in place before it enters monitor mode: monitor() listens for one error only while it
  // connects, and a second stray line then had no listener and failed the test.
  const monitor = new Redis(TEST_REDIS_URL, { monitor: true, lazyConnect: true });
  clients.push(monitor);
  monitor.on("error", () => undefined);
  const monitoring = new Promise<void>((resolve) => monitor.once("monitoring", () => resolve()));
  monitor.on("monitor", (_time: string, args: string[]) => {
    // The script call itself, not the SADDs it runs (MONITOR lists those too) or the reader's lookups.
    // A write names one set of the tenant (this minute's); a lookup names every minute's.
    if (!args[0]!.toLowerCase().startsWith("eval") || args.filter((a) => a.startsWith(mine)).length !== 1) return;
    const receipts = args.filter((a) => a.startsWith("evt_")).flatMap((a) => a.split(" "));
    if (receipts.length > 0) calls.push(receipts.length);
  });
  await monitor.connect();
  await monitoring;
  return {
    calls,
    async stop() {
      await new Promise((resolve) => setTimeout(resolve, 100));
      monitor.disconnect();
    },
  };
}

afterAll(async () => {
  const keys = await clients[0]!.keys(`${prefix}*`);
  if (keys.length > 0) await clients[0]!.del(...keys);
  for (const c of clients) c.disconnect();
});

describe("shared per-key window", () => {
  test("two processes together admit exactly max per window, in arrival order, with remaining counting down", async () => {
    const a = new SharedWindowLimiter(client(), 60_000);
    const b = new SharedWindowLimiter(client(), 60_000);
    const slot = `${prefix}:rl:k1:25`;
    const verdicts = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).take(slot, 25)));
    expect(verdicts.filter((v) => v.ok)).toHaveLength(25);
    const fromA = verdicts.filter((_, i) => i % 2 === 0);
    // Within one process the first requests of a turn are the admitted ones, remaining strictly decreasing.
    const admittedA = fromA.filter((v) => v.ok).map((v) => v.remaining);
    expect([...admittedA].sort((x, y) => y - x)).toEqual(admittedA);
    expect(verdicts.filter((v) => !v.ok).every((v) => v.remaining === 0)).toBe(true);
    const reset = verdicts[0]!.resetAt - Date.now();
    expect(reset).toBeGreaterThan(55_000);
    expect(reset).toBeLessThanOrEqual(60_000);
    // Later requests in the window are refused too; another key is not affected.
    expect((await a.take(slot, 25)).ok).toBe(false);
    expect((await b.take(`${prefix}:rl:k2:25`, 25)).ok).toBe(true);
  });

  test("leases: each process takes 1 % of the limit ahead; together they never overshoot and under-admit by at most N leases", async () => {
    const ra = client();
    const a = new SharedWindowLimiter(ra, 60_000);
    const b = new SharedWindowLimiter(client(), 60_000);
    const slot = `${prefix}:rl:lease:1000`;
    expect(leaseSize(1000)).toBe(10);
    const first = await a.take(slot, 1000);
    expect(first).toMatchObject({ ok: true, remaining: 999 });
    // One Redis call took 1 + 10: the next ten come from the lease, without Redis.
    expect(await ra.get(slot)).toBe("11");
    for (let i = 0; i < 10; i++) await a.take(slot, 1000);
    expect(await ra.get(slot)).toBe("11");
    let admitted = 11;
    for (let round = 0; round < 100; round++) {
      const vs = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).take(slot, 1000)));
      admitted += vs.filter((v) => v.ok).length;
    }
    expect(admitted).toBeLessThanOrEqual(1000);
    expect(admitted).toBeGreaterThanOrEqual(1000 - 2 * leaseSize(1000));
    expect(Number(await ra.get(slot))).toBeLessThanOrEqual(1000);
  });

  test("costs: a request is admitted whole or refused whole, and units a refused one could not use serve a cheaper one", async () => {
    const ra = client();
    const a = new SharedWindowLimiter(ra, 60_000);
    const b = new SharedWindowLimiter(client(), 60_000);
    const slot = `${prefix}:rows:cost:1000`;
    // 1 000 units, lease 10: each 300-unit request takes 310 from Redis and leaves 10 in its process's lease.
    expect(await a.take(slot, 1000, 300)).toMatchObject({ ok: true, remaining: 700 });
    expect(await b.take(slot, 1000, 300)).toMatchObject({ ok: true });
    expect(await a.take(slot, 1000, 300)).toMatchObject({ ok: true });
    expect(Number(await ra.get(slot))).toBe(930);
    // 70 left in Redis and 20 in a's lease (10 from each of its calls): 300 is refused whole, and the 70 join a's lease.
    const refused = await a.take(slot, 1000, 300);
    expect(refused.ok).toBe(false);
    expect(Number(await ra.get(slot))).toBe(1000);
    // a now holds 90 units: cheaper requests are admitted from them without Redis, never past them.
    expect(a.takeLeased(slot, 1000, 50)).toMatchObject({ ok: true });
    expect(a.takeLeased(slot, 1000, 41)).toBeUndefined();
    expect(a.takeLeased(slot, 1000, 40)).toMatchObject({ ok: true, remaining: 0 });
    expect((await a.take(slot, 1000, 1)).ok).toBe(false);
    expect(Number(await ra.get(slot))).toBeLessThanOrEqual(1000);
  });

  test("the window ends after its duration and the key starts over", async () => {
    const a = new SharedWindowLimiter(client(), 300);
    const slot = `${prefix}:rl:short:2`;
    expect((await Promise.all([a.take(slot, 2), a.take(slot, 2), a.take(slot, 2)])).map((v) => v.ok)).toEqual([true, true, false]);
    await new Promise((r) => setTimeout(r, 400));
    expect((await a.take(slot, 2)).ok).toBe(true);
  });

  test("a Redis that cannot answer rejects (the middleware then counts in memory)", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    clients.push(dead);
    await expect(new SharedWindowLimiter(dead, 60_000).take(`${prefix}:rl:dead:1`, 1)).rejects.toThrow();
  });
});

describe("receipts", () => {
  test("the receipts of one turn are written in one call and seen by another process", async () => {
    const { r, writer, reader } = await writerAndReader();
    const ids = Array.from({ length: 30 }, (_, i) => `evt_${String(i).padStart(26, "0")}`);
    writer.remember("t1", ids.slice(0, 10));
    writer.remember("t1", ids.slice(10));
    writer.remember("t2", ["evt_x"]);
    await writer.drain();
    for (const id of ids) expect(await reader.wasAccepted("t1", id)).toBe(true);
    expect(await reader.wasAccepted("t2", ids[0]!)).toBe(false);
    expect(await reader.wasAccepted("t2", "evt_x")).toBe(true);
    // One set per tenant and minute, expiring 15 minutes after its minute ends.
    const sets = await r.keys(`${prefix}:acc:2:t1:*`);
    expect(sets.length).toBeGreaterThanOrEqual(1);
    expect(await r.sismember(sets[0]!, ids[0]!)).toBe(1);
    // The set expires at a fixed instant: 15 minutes after the end of the minute named in its key.
    const bucket = Number(sets[0]!.split(":").pop());
    expect(await r.expiretime(sets[0]!)).toBe((bucket + 1) * 60 + 900);
  });

  test("receipts answered while a call is out go together in the next call, and this process answers from them meanwhile", async () => {
    // The writer's Redis answers 200 ms late, so its first call is still out over the next turns.
    const slow = await TcpProxy.forUrl(TEST_REDIS_URL).start();
    const r = new Redis(slow.rewrite(TEST_REDIS_URL), { commandTimeout: 2000, enableAutoPipelining: true });
    clients.push(r);
    const other = client();
    await Promise.all([ready(r), ready(other)]);
    slow.delay(200);
    const writer = new AcceptedReceipts(r, prefix);
    const reader = new AcceptedReceipts(other, prefix);
    const { calls, stop } = await receiptCalls("t3");
    writer.remember("t3", ["evt_first"]);
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    await nextTurn(); // the first call is now out
    writer.remember("t3", ["evt_second"]);
    await nextTurn();
    writer.remember("t3", ["evt_third", "evt_fourth"]);
    expect(await writer.wasAccepted("t3", "evt_third")).toBe(true);
    await writer.drain();
    for (const id of ["evt_first", "evt_second", "evt_third", "evt_fourth"]) expect(await reader.wasAccepted("t3", id)).toBe(true);
    await stop();
    await slow.stop();
    expect(calls).toEqual([1, 3]);
  });

  test("calls start at most every RECEIPTS_WRITE_INTERVAL_MS: receipts of the turns after a quick call wait and go together", async () => {
    const { writer, reader } = await writerAndReader();
    const { calls, stop } = await receiptCalls("t4");
    writer.remember("t4", ["evt_a"]); // a quiet API: written at the end of this turn
    const started = performance.now();
    await writer.drain();
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    writer.remember("t4", ["evt_b"]);
    await nextTurn();
    writer.remember("t4", ["evt_c", "evt_d"]);
    const within = performance.now() - started < RECEIPTS_WRITE_INTERVAL_MS;
    await new Promise((resolve) => setTimeout(resolve, RECEIPTS_WRITE_INTERVAL_MS * 3));
    for (const id of ["evt_a", "evt_b", "evt_c", "evt_d"]) expect(await reader.wasAccepted("t4", id)).toBe(true);
    await stop();
    // Unless this machine took longer than the interval for the first call itself.
    if (within) expect(calls).toEqual([1, 3]);
    else expect(calls.reduce((a, b) => a + b, 0)).toBe(4);
  });

  test("with Redis unreachable, receipts are kept in the process's memory", async () => {
    const dead = new Redis("redis://127.0.0.1:1", { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    clients.push(dead);
    const receipts = new AcceptedReceipts(dead, prefix);
    receipts.remember("t1", ["evt_local"]);
    await receipts.drain();
    expect(await receipts.wasAccepted("t1", "evt_local")).toBe(true);
    expect(await receipts.wasAccepted("t2", "evt_local")).toBe(false);
  });
});
