/**
 * Recovery without restart. The api, worker and scheduler run as separate processes; one
 * dependency (Postgres, Redis, SQS) fails for FAULT_MS and then comes back:
 *   freeze  connections are accepted and never answered; when it ends, every connection opened
 *           before or during it stays silent for good (a failover, a middlebox that forgot them),
 *           so a client recovers only by replacing its connections itself;
 *   cut     connections are dropped and new ones refused.
 * Within RECOVERY_MS of the fault's end (each step timed from that moment): every role is ready
 * with the same PID, Redis-backed state (limiter counter, idempotency claims) is shared again,
 * expiry runs again, and an event sent after recovery is stored and leasable; nothing accepted is
 * lost or stored twice.
 * A last scenario flushes a private Redis under the scheduler: it re-registers its job scheduler.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { Redis } from "ioredis";
import { createApiKey, SCOPES } from "../../src/store/api-keys";
import { freePort } from "../../src/dev/local-services";
import { connectPostgres } from "../../src/store/database";
import { TEST_REDIS_URL } from "../helpers/env";
import { account, FAULT_DEADLINES, FaultEnv, post, sleep, TIME_FACTOR, type RoleProcess } from "./fault-env";

jest.setTimeout(600_000);

/** The longest a role may take to be fully back after a fault ends (scaled by TEST_TIME_FACTOR). */
const RECOVERY_MS = 10_000 * TIME_FACTOR;
const FAULT_MS = 6000;
/** Requests per minute of the key whose every request is counted in Redis (leases of 1 below 200). */
const COUNTED_LIMIT = 150;

const DEADLINES = {
  ...FAULT_DEADLINES,
  EXPIRY_INTERVAL_SECONDS: "1",
  EXPIRY_OVERDUE_SECONDS: "5",
};

type Dep = "pg" | "redis" | "sqs";
type Fault = "freeze" | "cut";

const event = (seq: number) => ({ type: "recovery.test", payload: { seq }, tags: ["faults"] });

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Seconds since the last completed expiry run, from the scheduler's /metrics (undefined when absent). */
async function sinceLastExpiry(scheduler: RoleProcess): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${scheduler.url}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    const m = /^triggers_expiry_seconds_since_last_run (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Polls `check` until it holds; returns the ms since `started` (by default, now) it took, or throws
 * with `what` once `ms` have passed since `started`.
 */
async function within(ms: number, what: string, check: () => Promise<boolean>, started: number = Date.now()): Promise<number> {
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(200);
  }
}

/** The last /readyz answers of each role, printed when a role does not recover. */
const lastReadiness = new Map<string, string>();

/** Every role answers /readyz 200. */
async function allReady(roles: RoleProcess[]): Promise<boolean> {
  const answers = await Promise.all(
    roles.map(async (r) => {
      try {
        const res = await fetch(`${r.url}/readyz`, { signal: AbortSignal.timeout(3000) });
        const body = await res.text();
        lastReadiness.set(r.role, `${res.status} ${body}`);
        return res.status;
      } catch (err) {
        lastReadiness.set(r.role, String(err));
        return 0;
      }
    }),
  );
  return answers.every((c) => c === 200);
}

/** Leases from GET /inbox until `id` is among the leased events. */
async function leasable(api: RoleProcess, key: string, id: string): Promise<boolean> {
  const res = await fetch(`${api.url}/inbox?limit=500&visibility_timeout=300`, { headers: { Authorization: `Bearer ${key}` } });
  if (res.status !== 200) return false;
  const body = (await res.json()) as { data: Array<{ id: string }> };
  return body.data.some((e) => e.id === id);
}

const scenarios: Array<[Dep, Fault]> = [];
for (const dep of ["redis", "pg", "sqs"] as const) for (const fault of ["freeze", "cut"] as const) scenarios.push([dep, fault]);

describe.each(scenarios)("%s %s, then back", (dep, fault) => {
  const env = new FaultEnv({ env: DEADLINES });
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  beforeAll(() => env.start());
  afterAll(async () => {
    redis.disconnect();
    await env.close();
  });

  test("every role recovers by itself, shared state and expiry resume, nothing accepted is lost", async () => {
    try {
      await scenario();
    } catch (err) {
      // The roles' own account, so a red run says what each was doing.
      for (const p of env.spawned) {
        const state = p.child.exitCode !== null || p.child.signalCode !== null ? `exited: code ${p.child.exitCode}, signal ${p.child.signalCode}` : `/readyz: ${lastReadiness.get(p.role) ?? "-"}`;
        process.stdout.write(`--- ${p.role} pid ${p.child.pid} (${state})\n${p.output.join("").split("\n").slice(-15).join("\n")}\n`);
      }
      throw err;
    }
  });

  async function scenario(): Promise<void> {
    const counted = await createApiKey(env.db.prisma, { tenantId: "faults", name: "counted", scopes: [...SCOPES], rateLimit: COUNTED_LIMIT });
    const api = await env.spawn("api");
    const worker = await env.spawn("worker");
    const scheduler = await env.spawn("scheduler");
    const roles = [api, worker, scheduler];
    const pids = roles.map((r) => r.child.pid);
    const accepted = new Set<string>();
    let seq = 0;
    const send = async (key = env.key, headers: Record<string, string> = {}) => {
      const res = await post(`${api.url}/events`, key, event(seq++), headers);
      if (res.status === 202) accepted.add(res.body!.id as string);
      return res;
    };
    for (let i = 0; i < 5; i++) expect((await send()).status).toBe(202);
    // Parallel reads hold several pooled Postgres connections at once, so the pools carry idle
    // connections through the fault: a pool that hands them out afterwards fails requests.
    const burst = () => Promise.all(Array.from({ length: 8 }, () => status(`${api.url}/inbox?mode=peek&limit=5`, { Authorization: `Bearer ${env.key}` })));
    expect(await burst()).toEqual(Array(8).fill(200));
    await within(RECOVERY_MS, "ready before the fault", () => allReady(roles));
    await within(RECOVERY_MS, "expiry runs before the fault", async () => ((await sinceLastExpiry(scheduler)) ?? Infinity) < 3);

    // Traffic throughout; what is accepted during the fault must not be lost either.
    let stop = false;
    const load = (async () => {
      while (!stop) {
        await send();
        await sleep(100);
      }
    })();
    await sleep(1000);
    if (fault === "freeze") env.proxies[dep].freeze("mid-connection");
    else env.proxies[dep].cut();
    await sleep(FAULT_MS);
    if (fault === "freeze") env.proxies[dep].thaw({ strand: true });
    else env.proxies[dep].restore();
    // Every step of full function is timed from the dependency's return, not from the step before.
    const backAt = Date.now();

    const readyMs = await within(RECOVERY_MS, `every role ready after the ${dep} ${fault}`, () => allReady(roles), backAt);
    expect(roles.map((r) => r.child.pid)).toEqual(pids);
    expect(roles.every((r) => r.child.exitCode === null && r.child.signalCode === null)).toBe(true);
    // Ready means ready: no request fails on a connection left over from the fault.
    for (let i = 0; i < 5; i++) expect(await burst()).toEqual(Array(8).fill(200));

    // Shared state is on Redis again: a counted request moves the key's counter, a claim is stored.
    const slot = `${env.prefix}:rl:${counted.id}:${COUNTED_LIMIT}`;
    const sharedMs = await within(RECOVERY_MS, "the limiter counts in Redis again", async () => {
      const before = Number((await redis.get(slot)) ?? 0);
      if ((await send(counted.secret)).status !== 202) return false;
      return Number((await redis.get(slot)) ?? 0) > before;
    }, backAt);
    const claim = `recovery-${dep}-${fault}`;
    expect((await send(env.key, { "Idempotency-Key": claim })).status).toBe(202);
    const claims = await redis.keys(`${env.prefix}:idem:*${claim}`);
    expect(claims.length).toBe(1);

    // Expiry resumes: the scheduler completes a run again.
    const expiryMs = await within(RECOVERY_MS, "expiry runs again", async () => ((await sinceLastExpiry(scheduler)) ?? Infinity) < 2, backAt);
    stop = true;
    await load;

    // An event sent after recovery is stored and leasable.
    const after = await send();
    expect(after.status).toBe(202);
    const leasableMs = await within(RECOVERY_MS, "the event sent after recovery is leasable", () => leasable(api, env.key, after.body!.id as string), backAt);

    await env.drained(90_000);
    const counts = await account(env, seq, accepted);
    expect(counts.lost).toBe(0);
    expect(counts.stored).toBe(accepted.size);
    // Every POST carries its own seq and none is retried, so the same seq twice is a duplicate.
    expect(counts.duplicates).toBe(0);
    expect(roles.map((r) => r.child.pid)).toEqual(pids);
    process.stdout.write(`${JSON.stringify({ dep, fault, readyMs, sharedMs, expiryMs, leasableMs, limitMs: RECOVERY_MS })}\n`);
  }
});

/** A private redis-server on a free port (never the shared one: this test flushes it). */
async function privateRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: 0 });
  try {
    await within(10_000, "private redis-server up", async () => (await probe.ping().catch(() => "")) === "PONG");
  } finally {
    probe.disconnect();
  }
  return { url, child };
}

describe("redis loses the scheduler's keys (flush)", () => {
  let server: { url: string; child: ChildProcess };
  let env: FaultEnv;
  beforeAll(async () => {
    server = await privateRedis();
    env = await new FaultEnv({ env: DEADLINES, redisUrl: server.url }).start();
  });
  afterAll(async () => {
    await env?.close();
    if (server?.child.exitCode === null) server.child.kill("SIGKILL");
  });

  test("the scheduler re-registers its job scheduler and expiry resumes", async () => {
    const scheduler = await env.spawn("scheduler", { LOG_LEVEL: "info" });
    const pid = scheduler.child.pid;
    await within(RECOVERY_MS, "expiry runs before the flush", async () => ((await sinceLastExpiry(scheduler)) ?? Infinity) < 3);
    const admin = new Redis(server.url);
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }
    // Expiry resumed on a re-registered schedule: two runs finished after the re-registration (a
    // run in progress at the flush, however slow on a loaded machine, accounts for one at most).
    const resumedMs = await within(RECOVERY_MS, "expiry runs twice after the job scheduler is re-registered", async () => {
      const out = scheduler.output.join("");
      const at = out.indexOf("re-registered");
      return at !== -1 && (out.slice(at).match(/expiry run finished/g) ?? []).length >= 2;
    });
    expect(await status(`${scheduler.url}/readyz`)).toBe(200);
    expect(scheduler.child.pid).toBe(pid);
    process.stdout.write(`${JSON.stringify({ scenario: "flush", resumedMs, limitMs: RECOVERY_MS })}\n`);
  });
});

describe("a Postgres connection whose statement timed out", () => {
  const env = new FaultEnv();
  beforeAll(() => env.start());
  afterAll(() => env.close());

  test("is not handed out again: the first query after the fault succeeds", async () => {
    // One pooled connection, so the pool can only hand out the one that timed out, or a new one.
    const db = connectPostgres(env.env(0).DATABASE_URL!, { poolSize: 1, queryTimeoutMs: 500, connectTimeoutMs: 1000 });
    try {
      await db.prisma.$transaction((tx) => tx.$queryRaw`SELECT 1`);
      // A statement inside a transaction passes its deadline; the rollback returns the connection to the pool.
      const tx = db.prisma.$transaction(async (t) => {
        await t.$queryRaw`SELECT 1`;
        env.proxies.pg.freeze("mid-connection");
        await t.$queryRaw`SELECT 2`;
      }, { timeout: 5000, maxWait: 2000 });
      await expect(tx).rejects.toThrow();
      env.proxies.pg.thaw({ strand: true });
      const started = Date.now();
      await db.ping();
      await db.prisma.$queryRaw`SELECT 1`;
      expect(Date.now() - started).toBeLessThan(1000 * TIME_FACTOR);
    } finally {
      await db.close();
    }
  });
});
