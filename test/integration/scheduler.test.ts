import { insertStoredEvents } from "../helpers/stored-events";
import { Redis } from "ioredis";
import { Queue } from "bullmq";
import { buildContainer, type Container } from "../../src/container";
import { createLogger } from "../../src/observability/logger";
import { expireEvents, type ExpireEventsDeps, type ExpireEventsOptions } from "../../src/jobs/expire-events";
import { maintenanceQueueName, startScheduler, type ExpireFn, type RunningScheduler } from "../../src/roles/scheduler";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { TEST_REDIS_URL } from "../helpers/env";

const DAY = 86_400;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Status = "pending" | "delivered" | "acknowledged" | "dead";

/** Seeds rows around the default retention windows (ack 7 d, dead 14 d), relative to the wall clock the scheduler reads. */
async function seedMix(h: Harness): Promise<void> {
  const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
  const seed = (tag: string, count: number, status: Status, receivedAt: string, acknowledgedAt: string | null, deadAt: string | null) =>
    insertStoredEvents(
      { query: (sql, params) => h.sql(sql, params ? [...params] : []) },
      `SELECT $1 || '_' || g AS id, 'tenant-' || (g % 3) AS tenant_id, 'test.seeded' AS type, '{}'::jsonb AS payload, repeat('0', 64) AS body_hash,
              $2::event_status AS status, $3::timestamptz AS received_at, $4::timestamptz AS acknowledged_at, $5::timestamptz AS dead_at
       FROM generate_series(1, $6::int) AS g`,
      [tag, status, receivedAt, acknowledgedAt, deadAt, count],
    );
  await seed("ackold", 25, "acknowledged", ago(30 * DAY), ago(8 * DAY), null);
  await seed("ackfresh", 3, "acknowledged", ago(30 * DAY), ago(6 * DAY), null);
  await seed("deadold", 4, "dead", ago(60 * DAY), null, ago(15 * DAY));
  await seed("deadfresh", 2, "dead", ago(60 * DAY), null, ago(10 * DAY));
  await seed("pendold", 5, "pending", ago(365 * DAY), null, null);
  await seed("delivold", 5, "delivered", ago(365 * DAY), null, null);
}

/** What seedMix leaves once expiry ran with the default retention. */
const AFTER_EXPIRY = { ackfresh: 3, deadfresh: 2, pendold: 5, delivold: 5 };

async function remaining(h: Harness): Promise<Record<string, number>> {
  const rows = await h.sql<{ tag: string; n: string }>("SELECT split_part(id, '_', 1) AS tag, count(*) AS n FROM events GROUP BY 1");
  return Object.fromEntries(rows.map((r) => [r.tag, Number(r.n)]));
}

/** Parsed log lines of a harness with a given message. */
function logsWith(h: Harness, msg: string): Array<Record<string, unknown>> {
  return h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

async function metricValue(c: Container, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await c.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const match = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}

/** Removes the test's BullMQ queue and anything else under its keys. */
async function obliterate(prefix: string): Promise<void> {
  const name = maintenanceQueueName(prefix);
  const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
  }
  const leftover = await connection.keys(`bull:${name}:*`);
  if (leftover.length > 0) await connection.del(...leftover);
  await connection.quit();
}

describe("scheduler on BullMQ (real Redis and Postgres)", () => {
  let h: Harness;
  const started: RunningScheduler[] = [];
  const extraContainers: Container[] = [];

  beforeEach(async () => {
    h = await startHarness({ worker: false, redis: true });
  });
  afterEach(async () => {
    for (const s of started.splice(0)) await s.close();
    for (const c of extraContainers.splice(0)) await c.close();
    await obliterate(h.config.redisPrefix);
    await h.close();
  });

  test("a scheduled run removes the same rows as calling expireEvents, and records metrics and a log line", async () => {
    await seedMix(h);
    started.push(await startScheduler(h.c, { everyMs: 500 }));
    await h.eventually(async () => (await metricValue(h.c, "triggers_expiry_deleted_total", { kind: "dead" })) === 4, 10_000);
    expect(await remaining(h)).toEqual(AFTER_EXPIRY);
    expect(await metricValue(h.c, "triggers_expiry_deleted_total", { kind: "acknowledged" })).toBe(25);
    const line = logsWith(h, "expiry run finished")[0];
    expect(line).toMatchObject({ acknowledged: 25, dead: 4, stale: 0, batches: 2, complete: true, durationMs: expect.any(Number) });
  });

  // A PGlite data dir has one owner: a second container on it would open the same files twice.
  onlyOn("postgres", "two containers share one database").test("two schedulers on one prefix register one schedule: each tick runs once, not twice", async () => {
    const second = await buildContainer(h.config, { logger: createLogger("silent"), poolSize: 2 });
    extraContainers.push(second);
    let runs = 0;
    const counting: ExpireFn = async (deps, opts) => {
      runs++;
      return expireEvents(deps, opts);
    };
    const everyMs = 500;
    const t0 = Date.now();
    started.push(...(await Promise.all([startScheduler(h.c, { everyMs, expire: counting }), startScheduler(second, { everyMs, expire: counting })])));
    await sleep(2500);
    const elapsed = Date.now() - t0;
    for (const s of started.splice(0)) await s.close();
    // One immediate run plus one per interval; two schedulers would double it.
    const ticks = Math.floor(elapsed / everyMs) + 1;
    expect(runs).toBeGreaterThanOrEqual(ticks - 2);
    expect(runs).toBeLessThanOrEqual(ticks + 1);

    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(maintenanceQueueName(h.config.redisPrefix), { connection });
    try {
      expect(await queue.getJobSchedulersCount()).toBe(1);
      const completed = await queue.getCompleted();
      expect(new Set(completed.map((j) => j.id)).size).toBe(completed.length);
      expect(completed.length).toBe(runs);
    } finally {
      await queue.close();
      await connection.quit(); // a Queue does not close a connection it was handed
    }
  });

  test("a failed run is retried with backoff and then succeeds", async () => {
    await seedMix(h);
    let calls = 0;
    const flaky: ExpireFn = async (deps: ExpireEventsDeps, opts: ExpireEventsOptions) => {
      calls++;
      if (calls === 1) throw new Error("database restarting");
      return expireEvents(deps, opts);
    };
    // A long interval: only the immediate first tick happens during the test.
    started.push(await startScheduler(h.c, { everyMs: 60_000, backoffMs: 100, expire: flaky }));
    await h.eventually(async () => (await metricValue(h.c, "triggers_expiry_deleted_total", { kind: "acknowledged" })) === 25, 10_000);
    expect(calls).toBe(2);
    expect(await remaining(h)).toEqual(AFTER_EXPIRY);
    expect(logsWith(h, "expiry run failed; will retry")).toEqual([expect.objectContaining({ attemptsMade: 1, level: 40 })]);
    expect(await metricValue(h.c, "triggers_expiry_failures_total")).toBe(0);
  });

  test("a run that keeps failing stops after its attempts and is reported once", async () => {
    let calls = 0;
    const broken: ExpireFn = async () => {
      calls++;
      throw new Error("relation \"events\" does not exist");
    };
    started.push(await startScheduler(h.c, { everyMs: 60_000, backoffMs: 50, attempts: 3, expire: broken }));
    await h.eventually(async () => (await metricValue(h.c, "triggers_expiry_failures_total")) === 1, 10_000);
    await sleep(700); // longer than the next backoff would have been
    expect(calls).toBe(3);
    expect(await metricValue(h.c, "triggers_expiry_failures_total")).toBe(1);
    expect(logsWith(h, "expiry run failed; will retry").map((l) => l.attemptsMade)).toEqual([1, 2]);
    expect(logsWith(h, "expiry run failed; giving up until the next tick")).toEqual([expect.objectContaining({ attemptsMade: 3, level: 50 })]);
  });
});

describe("scheduler without REDIS_URL (embedded timer)", () => {
  let h: Harness;
  let scheduler: RunningScheduler | undefined;

  beforeEach(async () => {
    h = await startHarness({ worker: false });
  });
  afterEach(async () => {
    await scheduler?.close();
    scheduler = undefined;
    await h.close();
  });

  test("the timer removes the same rows as calling expireEvents", async () => {
    expect(h.config.redisUrl).toBeUndefined();
    await seedMix(h);
    scheduler = await startScheduler(h.c, { everyMs: 200, firstRunDelayMs: 10 });
    await h.eventually(async () => (await metricValue(h.c, "triggers_expiry_deleted_total", { kind: "dead" })) === 4, 5000);
    expect(await remaining(h)).toEqual(AFTER_EXPIRY);
    expect(logsWith(h, "expiry run finished")[0]).toMatchObject({ acknowledged: 25, dead: 4, stale: 0 });
  });

  test("a failed timer run is reported and the next tick tries again", async () => {
    await seedMix(h);
    let calls = 0;
    const flaky: ExpireFn = async (deps, opts) => {
      calls++;
      if (calls === 1) throw new Error("database restarting");
      return expireEvents(deps, opts);
    };
    scheduler = await startScheduler(h.c, { everyMs: 100, firstRunDelayMs: 10, expire: flaky });
    await h.eventually(async () => (await metricValue(h.c, "triggers_expiry_deleted_total", { kind: "acknowledged" })) === 25, 5000);
    expect(await metricValue(h.c, "triggers_expiry_failures_total")).toBe(1);
    expect(logsWith(h, "expiry run failed; trying again at the next tick")).toHaveLength(1);
    expect(await remaining(h)).toEqual(AFTER_EXPIRY);
  });
});
