/**
 * A send whose outcome the API cannot know (SQS answers past the send deadline, freezes, or drops
 * the connection after the request was written) answers 503 enqueue_outcome_unknown, not
 * service_unavailable: the event may be on the queue. Retrying with the same Idempotency-Key
 * stores it exactly once; after the fault, ingest works again without a restart.
 */
import { FaultEnv, post, sleep, type RoleProcess } from "./fault-env";

jest.setTimeout(120_000);

/** SQS_SEND_TIMEOUT_MS of the API under test, ms. */
const DEADLINE_MS = 1000;

const env = new FaultEnv({ env: { SQS_SEND_TIMEOUT_MS: String(DEADLINE_MS) } });
let api: RoleProcess;

beforeAll(async () => {
  await env.start();
  api = await env.spawn("api");
  await env.spawn("worker");
}, 60_000);
afterAll(() => env.close());

const event = (name: string) => ({ type: "outcome.test", payload: { name } });

/** Posts `name` with Idempotency-Key `name` until it is accepted (at most 20 s). */
async function retryUntilAccepted(name: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await post(`${api.url}/events`, env.key, event(name), { "Idempotency-Key": name });
    if (res.status === 202) return res.body!.id as string;
    if (Date.now() > deadline) throw new Error(`${name} not accepted after the fault: ${res.status} ${JSON.stringify(res.body)}`);
    await sleep(200);
  }
}

/** Rows stored under a payload name (every event of these tests carries a distinct one). */
const rowsNamed = (name: string) => env.count("SELECT count(*) AS n FROM events WHERE payload->>'name' = $1", [name]);

function expectUnknown(res: Awaited<ReturnType<typeof post>>): void {
  expect([res.status, (res.body?.error as { code?: string } | undefined)?.code]).toEqual([503, "enqueue_outcome_unknown"]);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

test("SQS answering just past the deadline: enqueue_outcome_unknown; the event was enqueued; a keyed retry stores it once", async () => {
  // Each chunk is held 700 ms each way: the request reaches SQS, its answer comes after the deadline.
  env.proxies.sqs.delay(700);
  const started = Date.now();
  const keyless = await post(`${api.url}/events`, env.key, event("late-keyless"));
  expect(Date.now() - started).toBeLessThan(DEADLINE_MS + 1500);
  expectUnknown(keyless);
  expectUnknown(await post(`${api.url}/events`, env.key, event("late-keyed"), { "Idempotency-Key": "late-keyed" }));
  // A batch whose send outcome is unknown as a whole answers the same code.
  const batch = await post(`${api.url}/events/batch`, env.key, { events: [event("late-batch-0"), event("late-batch-1")] });
  expectUnknown(batch);
  env.proxies.sqs.delay(0);

  const id = await retryUntilAccepted("late-keyed");
  await env.drained();
  // The answer was honest: these events did reach the queue although the API could not confirm it.
  expect(await rowsNamed("late-keyless")).toBe(1);
  expect(await rowsNamed("late-batch-0")).toBe(1);
  // And the keyed one is stored exactly once, under the id the retry answered.
  expect(await rowsNamed("late-keyed")).toBe(1);
  expect(await env.count("SELECT count(*) AS n FROM events WHERE id = $1", [id])).toBe(1);
});

test("SQS frozen: enqueue_outcome_unknown within the deadline; after the thaw a keyed retry stores the event once", async () => {
  env.proxies.sqs.freeze("mid-connection");
  const started = Date.now();
  const res = await post(`${api.url}/events`, env.key, event("frozen"), { "Idempotency-Key": "frozen" });
  expect(Date.now() - started).toBeLessThan(DEADLINE_MS + 1500);
  expectUnknown(res);
  env.proxies.sqs.thaw();

  await retryUntilAccepted("frozen");
  expect((await post(`${api.url}/events`, env.key, event("after-freeze"))).status).toBe(202);
  await env.drained();
  expect(await rowsNamed("frozen")).toBe(1);
  expect(await rowsNamed("after-freeze")).toBe(1);
});

test("connection dropped after the request was written: enqueue_outcome_unknown; after the fault a keyed retry stores the event once", async () => {
  // The request is written and held; then every connection is dropped before SQS answers.
  env.proxies.sqs.freeze("mid-connection");
  const pending = post(`${api.url}/events`, env.key, event("dropped"), { "Idempotency-Key": "dropped" });
  await sleep(200);
  env.proxies.sqs.cut();
  const res = await pending;
  expectUnknown(res);
  env.proxies.sqs.restore();
  env.proxies.sqs.thaw();

  await retryUntilAccepted("dropped");
  await env.drained();
  expect(await rowsNamed("dropped")).toBe(1);
});
