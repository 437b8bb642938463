/**
 * Frozen dependencies: Postgres, Redis and SQS each stop answering (connections accepted, nothing
 * sent back) while the API and a worker run as real processes under load. Two variants per
 * dependency: open connections stop answering mid-stream, or are dropped so the clients reconnect
 * into a proxy that accepts and never answers. For each: no request waits longer than its deadline
 * + 1 s (scaled to the load of the moment), nothing 202'd is lost, and service resumes when the freeze ends.
 * FREEZE_RUNS=3 repeats every scenario.
 */
import type { FreezeMode } from "../helpers/tcp-proxy";
import { account, FAULT_DEADLINES, FaultEnv, post, sleep } from "./fault-env";
import { deadline, waitFor } from "../helpers/deadlines";

jest.setTimeout(deadline(600_000));

const DEADLINES = FAULT_DEADLINES;
/** What a request may wait for while a dependency is frozen: its deadlines (checkout + statement, or the send deadline). */
const PRODUCT_DEADLINE_MS: Record<Dep, number> = {
  pg: 1000 + 1500,
  redis: 2 * 300, // the limiter makes one call (the receipt is not waited for); one more deadline of slack
  sqs: 1500,
};
/**
 * The longest a request may take: the product's deadlines (fixed), plus 1 s on the reference
 * machine for the process to notice and answer, scaled to the load of the moment (a starved
 * process answers a deadline late, by scheduling, not by waiting on the frozen dependency).
 */
const limitMs = (dep: Dep): number => PRODUCT_DEADLINE_MS[dep] + deadline(1000);
const FREEZE_MS = 6000;
const RUNS = Number(process.env.FREEZE_RUNS ?? 1);

type Dep = "pg" | "redis" | "sqs";

interface Timed {
  readonly what: string;
  readonly status: number;
  readonly ms: number;
  readonly retryAfter: string | null;
  readonly during: boolean;
}

const event = (seq: number) => ({ type: "freeze.test", payload: { seq }, tags: ["faults"] });

async function timedFetch(what: string, url: string, init: RequestInit, frozen: () => boolean): Promise<Timed> {
  const during = frozen();
  const started = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    return { what, status: res.status, ms: performance.now() - started, retryAfter: res.headers.get("retry-after"), during };
  } catch {
    return { what, status: 0, ms: performance.now() - started, retryAfter: null, during };
  }
}

const scenarios: Array<[Dep, FreezeMode]> = [];
for (let run = 0; run < RUNS; run++) for (const dep of ["pg", "redis", "sqs"] as const) for (const mode of ["mid-connection", "accept"] as const) scenarios.push([dep, mode]);

describe.each(scenarios)("%s frozen (%s)", (dep, mode) => {
  const env = new FaultEnv({ env: DEADLINES });
  beforeAll(() => env.start());
  afterAll(() => env.close());

  test("bounded waits, nothing 202'd lost, service resumes", async () => {
    const api = await env.spawn("api");
    await env.spawn("worker");
    const auth = { Authorization: `Bearer ${env.key}` };
    const accepted = new Set<string>();
    let seq = 0;
    // Warm: the key is cached and every client has open connections to freeze mid-stream.
    for (let i = 0; i < 5; i++) {
      const res = await post(`${api.url}/events`, env.key, event(seq++));
      expect(res.status).toBe(202);
      accepted.add(res.body!.id as string);
    }
    expect((await fetch(`${api.url}/inbox?mode=peek`, { headers: auth })).status).toBe(200);
    // Ready before the freeze; on a loaded machine a readiness check can overrun its deadline for a moment.
    await waitFor(async () => (await fetch(`${api.url}/readyz`)).status === 200, { timeoutMs: 10_000, intervalMs: 200, what: "the api ready before the freeze" });

    let frozen = false;
    const timings: Timed[] = [];
    const stopAt = Date.now() + 2000 + FREEZE_MS + 3000;
    const loop = async (fn: () => Promise<Timed>) => {
      while (Date.now() < stopAt) {
        timings.push(await fn());
        await sleep(50);
      }
    };
    const load = Promise.all([
      ...Array.from({ length: 3 }, () =>
        (async () => {
          while (Date.now() < stopAt) {
            const during = frozen;
            const started = performance.now();
            const res = await post(`${api.url}/events`, env.key, event(seq++));
            timings.push({ what: "POST /events", status: res.status, ms: performance.now() - started, retryAfter: res.headers.get("retry-after"), during });
            if (res.status === 202) accepted.add(res.body!.id as string);
            await sleep(50);
          }
        })(),
      ),
      loop(() => timedFetch("GET /inbox", `${api.url}/inbox?mode=peek&limit=5`, { headers: auth }, () => frozen)),
      loop(() => timedFetch("GET /readyz", `${api.url}/readyz`, {}, () => frozen)),
    ]);
    await sleep(2000);
    env.proxies[dep].freeze(mode);
    frozen = true;
    const frozenAt = Date.now();
    // A probe of readiness taken well inside the freeze names the frozen dependency.
    await sleep(2500);
    const ready = await timedFetch("GET /readyz", `${api.url}/readyz`, {}, () => true);
    const readyBody = await (await fetch(`${api.url}/readyz`)).text();
    await sleep(Math.max(0, FREEZE_MS - (Date.now() - frozenAt)));
    env.proxies[dep].thaw();
    frozen = false;
    await load;

    // 1. Bounded waits.
    const limit = limitMs(dep);
    const slow = timings.filter((t) => t.ms > limit);
    expect(slow).toEqual([]);
    const failed = timings.filter((t) => t.status === 0 || t.status >= 500 && t.status !== 503);
    // The API's own account of an unexpected failure, printed so a red run says which error it was.
    if (failed.length > 0) process.stdout.write(api.output.join("").split("\n").filter((l) => /"level":50/.test(l)).slice(0, 5).join("\n") + "\n");
    expect(failed).toEqual([]);
    // 2. What the frozen dependency means for each route.
    const during = timings.filter((t) => t.during);
    expect(ready.status).toBe(503);
    expect(readyBody).toContain(dep === "pg" ? "postgres" : dep);
    const posts = during.filter((t) => t.what === "POST /events");
    if (dep === "sqs") {
      expect(posts.some((t) => t.status === 503)).toBe(true);
      for (const t of posts.filter((p) => p.status === 503)) expect(Number(t.retryAfter)).toBeGreaterThanOrEqual(1);
    } else {
      // Ingest needs neither Postgres (cached key) nor Redis (memory limiter).
      expect(posts.filter((t) => t.status !== 202)).toEqual([]);
    }
    const inbox = during.filter((t) => t.what === "GET /inbox");
    if (dep === "pg") expect(inbox.some((t) => t.status === 503)).toBe(true);
    else expect(inbox.filter((t) => t.status !== 200)).toEqual([]);

    // 3. Service resumes once the freeze ends.
    const resumeBy = Date.now() + deadline(15_000);
    for (;;) {
      const r = await post(`${api.url}/events`, env.key, event(seq++));
      if (r.status === 202) accepted.add(r.body!.id as string);
      const inboxOk = (await fetch(`${api.url}/inbox?mode=peek`, { headers: auth })).status === 200;
      const readyOk = (await fetch(`${api.url}/readyz`)).status === 200;
      if (r.status === 202 && inboxOk && readyOk) break;
      if (Date.now() > resumeBy) throw new Error(`service did not resume after the ${dep} freeze`);
      await sleep(250);
    }

    // 4. Nothing 202'd is lost.
    await env.drained(90_000);
    const counts = await account(env, seq, accepted);
    expect(counts.lost).toBe(0);
    expect(counts.stored).toBe(accepted.size);
    process.stdout.write(`${JSON.stringify({ dep, mode, requests: timings.length, during: during.length, maxMs: Math.round(Math.max(...timings.map((t) => t.ms))) })}\n`);
  });
});
