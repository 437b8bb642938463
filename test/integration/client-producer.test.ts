import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { BatchPartiallyAcceptedError, TriggersClient, TriggersError } from "../../src/client/index";
import type { SqsQueue } from "../../src/queue/sqs-queue";
import { createApiKey } from "../../src/store/api-keys";
import { TcpProxy } from "../helpers/tcp-proxy";
import { sqsEndpoint, startHarness, type Harness } from "../helpers/harness";

/** The producer side of the client library against the real API (SQS reached through a proxy the test can cut). */
describe("TriggersClient (producer)", () => {
  let h: Harness;
  let sqs: TcpProxy;
  let key: string;

  beforeAll(async () => {
    sqs = await TcpProxy.forUrl(sqsEndpoint()).start();
    // A short send deadline: a hung SQS answers 503 after 500 ms while the send may still reach the queue.
    // A worker receive caught by a freeze loses its answer, and its messages stay in flight for the
    // visibility timeout: a short one brings them back within the tests' wait for a drained queue.
    h = await startHarness({ env: { SQS_ENDPOINT: sqs.rewrite(sqsEndpoint()), SQS_SEND_TIMEOUT_MS: "500", WORKER_VISIBILITY_SECONDS: "5" } });
    key = await h.key("producer");
  });
  afterAll(async () => {
    await h.close();
    await sqs.stop();
  });

  test("require('triggers/client') resolves to the built entry point", () => {
    const root = join(__dirname, "..", "..");
    const out = execFileSync(process.execPath, ["-e", "const c = require('triggers/client'); console.log(require.resolve('triggers/client'), typeof c.Consumer, typeof c.TriggersClient)"], { cwd: root, encoding: "utf8" });
    expect(out.trim()).toBe(`${join(root, "dist", "src", "client", "index.js")} function function`);
  });

  test("send with an Idempotency-Key: a repeat is replayed with the first id; the event reaches the inbox", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const first = await client.send({ type: "order.created", payload: { id: 1 } }, { idempotencyKey: "order-1" });
    expect(first).toMatchObject({ id: expect.stringMatching(/^evt_/), status: "accepted", replayed: false });
    const again = await client.send({ type: "order.created", payload: { id: 1 } }, { idempotencyKey: "order-1" });
    expect(again).toMatchObject({ id: first.id, replayed: true });
    // The same key with another body is refused, as a typed error.
    const conflict = await client.send({ type: "order.created", payload: { id: 2 } }, { idempotencyKey: "order-1" }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(TriggersError);
    expect(conflict).toMatchObject({ status: 409, code: "idempotency_key_reused" });
    const leased = await h.eventually(async () => {
      const r = await client.lease({ waitSeconds: 5 });
      return r.data.length > 0 ? r.data : undefined;
    });
    expect(leased.map((e) => e.id)).toEqual([first.id]);
    await client.ack(first.id, leased[0]!.lease_id!);
  });

  test("sendBatch: every item gets a key (its own or a generated one); invalid input is a typed 400", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const accepted = await client.sendBatch([
      { type: "a", payload: {} },
      { type: "b", payload: {}, idempotency_key: "batch-b" },
    ]);
    expect(accepted.map((a) => a.status)).toEqual(["accepted", "accepted"]);
    expect(accepted[0]!.idempotency_key).toMatch(/^[0-9a-f-]{36}$/);
    expect(accepted[1]!.idempotency_key).toBe("batch-b");
    const bad = await client.sendBatch([{ type: "", payload: {} }]).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: "validation_failed" });
  });

  test("a 503 (SQS down) is retried after Retry-After and succeeds once SQS is back", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key, maxRetries: 10 });
    sqs.cut();
    const restore = setTimeout(() => sqs.restore(), 1500);
    try {
      const accepted = await client.send({ type: "retry.test", payload: {} }, { idempotencyKey: "retry-1" });
      expect(accepted.status).toBe("accepted");
    } finally {
      clearTimeout(restore);
      sqs.restore();
    }
    // It was refused while SQS was down, so it took at least one 503 before the success.
    expect(Number((await h.c.metrics.enqueueFailures.get()).values[0]?.value ?? 0)).toBeGreaterThan(0);
  });

  test("a 429 carries Retry-After; with retries off the caller gets it as a typed error", async () => {
    const limited = (await createApiKey(h.c.db.prisma, { tenantId: "producer-limited", name: "t", scopes: ["events:write"], rateLimit: 1 })).secret;
    const client = new TriggersClient({ baseUrl: h.url, apiKey: limited, maxRetries: 0 });
    await client.send({ type: "x", payload: {} });
    const err = (await client.send({ type: "x", payload: {} }).catch((e: unknown) => e)) as TriggersError;
    expect(err).toBeInstanceOf(TriggersError);
    expect(err.status).toBe(429);
    expect(err.code).toBe("rate_limited");
    expect(err.retryAfterSeconds).toBeGreaterThan(0);
  });
  const enqueueFailures = async () => Number((await h.c.metrics.enqueueFailures.get()).values[0]?.value ?? 0);

  /** Events of `tenant` and `type` stored, by id, once SQS is empty (the worker has stored everything sent). */
  async function storedOnceDrained(tenant: string, type: string, atLeast: number): Promise<string[]> {
    await h.eventually(async () => {
      const [row] = await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND type = $2", [tenant, type]);
      const depth = await h.c.queue.depth();
      return row!.n >= atLeast && depth.visible === 0 && depth.inFlight === 0;
    }, 20_000);
    return (await h.sql<{ id: string }>("SELECT id FROM events WHERE tenant_id = $1 AND type = $2 ORDER BY id", [tenant, type])).map((r) => r.id);
  }

  test("sends without a key get a generated one, so retries after 503s whose enqueue went through later store each event once", async () => {
    const tenant = "producer-unknown-outcome";
    const client = new TriggersClient({ baseUrl: h.url, apiKey: await h.key(tenant), maxRetries: 10 });
    // SQS hangs: each attempt answers 503 after the 500 ms send deadline, but its SendMessageBatch is
    // held, not lost, and reaches the queue when SQS thaws (the outcome the API could not know).
    const failuresBefore = await enqueueFailures();
    sqs.freeze("mid-connection");
    const thaw = setTimeout(() => sqs.thaw(), 2_500);
    let accepted;
    try {
      accepted = await Promise.all([1, 2, 3].map((n) => client.send({ type: "unknown.outcome", payload: { n } })));
    } finally {
      clearTimeout(thaw);
      sqs.thaw();
    }
    expect(accepted.map((a) => a.status)).toEqual(["accepted", "accepted", "accepted"]);
    expect(new Set(accepted.map((a) => a.idempotency_key)).size).toBe(3);
    // Every send was refused with a 503 at least once before its success.
    expect((await enqueueFailures()) - failuresBefore).toBeGreaterThanOrEqual(3);
    expect(await storedOnceDrained(tenant, "unknown.outcome", 3)).toEqual(accepted.map((a) => a.id).sort());
  }, 60_000);

  /** SQS fails every other entry of its next `calls` SendMessageBatch calls (SenderFault false: a retry may succeed); those entries are not sent. */
  function failHalfOfEachCall(queue: SqsQueue, calls: number): { restore(): void; faulted(): number } {
    const original = queue.sendBatch.bind(queue);
    let faulted = 0;
    queue.sendBatch = async (entries, signal) => {
      if (faulted >= calls) return original(entries, signal);
      faulted++;
      const kept = entries.filter((_, i) => i % 2 === 0);
      const sent = await original(kept, signal);
      return entries.map((e, i) => (i % 2 === 0 ? sent[i / 2]! : { id: e.id, ok: false, error: "InternalError: try again", senderFault: false }));
    };
    return { restore: () => void (queue.sendBatch = original), faulted: () => faulted };
  }

  test("a 207 is not a success: the refused items are resent with their keys until all are accepted", async () => {
    const tenant = "producer-207-retried";
    const client = new TriggersClient({ baseUrl: h.url, apiKey: await h.key(tenant), maxRetries: 3 });
    const fault = failHalfOfEachCall(h.c.queue, 1);
    let accepted;
    try {
      accepted = await client.sendBatch(Array.from({ length: 16 }, (_, i) => ({ type: "partial.retried", payload: { i } })));
    } finally {
      fault.restore();
    }
    expect(fault.faulted()).toBe(1);
    expect(accepted.map((a) => a.status)).toEqual(Array(16).fill("accepted"));
    expect(new Set(accepted.map((a) => a.id)).size).toBe(16);
    expect(await storedOnceDrained(tenant, "partial.retried", 16)).toEqual(accepted.map((a) => a.id).sort());
  }, 60_000);

  test("items still refused when the retries run out: sendBatch throws BatchPartiallyAcceptedError with every item's outcome", async () => {
    const tenant = "producer-207-refused";
    const client = new TriggersClient({ baseUrl: h.url, apiKey: await h.key(tenant), maxRetries: 1 });
    const fault = failHalfOfEachCall(h.c.queue, 1_000);
    let err: unknown;
    try {
      err = await client.sendBatch(Array.from({ length: 16 }, (_, i) => ({ type: "partial.refused", payload: { i } }))).catch((e: unknown) => e);
    } finally {
      fault.restore();
    }
    expect(err).toBeInstanceOf(BatchPartiallyAcceptedError);
    expect(err).toBeInstanceOf(TriggersError);
    const partial = err as BatchPartiallyAcceptedError;
    expect(partial.code).toBe("batch_partially_accepted");
    expect(partial.results.map((r) => r.index)).toEqual([...Array(16).keys()]);
    expect(partial.results.every((r) => typeof r.idempotency_key === "string")).toBe(true);
    const accepted = partial.accepted;
    const rejected = partial.rejected;
    expect(accepted.length + rejected.length).toBe(16);
    expect(accepted.length).toBeGreaterThan(0);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((r) => r.retryable && r.error.code === "service_unavailable")).toBe(true);
    // What it reports as accepted is exactly what was stored; resending the refused items with their keys completes the batch.
    expect(await storedOnceDrained(tenant, "partial.refused", accepted.length)).toEqual(accepted.map((a) => a.id).sort());
    const resent = await client.sendBatch(rejected.map((r) => ({ type: "partial.refused", payload: { i: r.index }, idempotency_key: r.idempotency_key })));
    expect(resent).toHaveLength(rejected.length);
    expect((await storedOnceDrained(tenant, "partial.refused", 16)).length).toBe(16);
  }, 60_000);
});
