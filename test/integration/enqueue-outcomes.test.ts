import { acceptEvents, type AcceptInput } from "../../src/ingest/accept-events";
import { parseEnvelope } from "../../src/domain/envelope";
import { SendBatcher } from "../../src/queue/send-batcher";
import { createSqsClient, SqsOutcomeUnknownError, SqsQueue, type SendEntry, type SendOutcome } from "../../src/queue/sqs-queue";
import { sqsEndpoint, startHarness, type Harness } from "../helpers/harness";
import { TcpProxy } from "../helpers/tcp-proxy";

/**
 * Events of one request can travel in several SendMessageBatch calls (a call carries at most
 * 256 KiB). This queue sends its first call to the emulator and loses the answer of the second,
 * as a send past its deadline would: the request's outcomes then differ per event.
 */
class SecondCallUnknown extends SqsQueue {
  private calls = 0;
  override async sendBatch(entries: readonly SendEntry[]): Promise<SendOutcome[]> {
    if (++this.calls === 2) throw new SqsOutcomeUnknownError("SendMessageBatch did not answer within 5000 ms");
    return super.sendBatch(entries);
  }
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(() => h.close());

test("per event: the confirmed one is accepted, the one whose send outcome is unknown carries enqueue_outcome_unknown (retryable)", async () => {
  const queue = new SecondCallUnknown(h.c.queue.client, h.c.queue.queueUrl);
  const deps = { ...h.api.deps.accept, batcher: new SendBatcher(queue, 2) };
  // Two events of ~150 KB: they cannot share one 256 KiB call.
  const big = (n: number): AcceptInput => ({ envelope: parseEnvelope({ type: "big", payload: { n, pad: "x".repeat(150_000) } }), idempotencyKey: null });
  const outcomes = await acceptEvents(deps, "outcomes", [big(0), big(1)]);
  expect(outcomes[0]).toMatchObject({ ok: true, status: "accepted" });
  expect(outcomes[1]).toMatchObject({ ok: false, retryable: true });
  const error = (outcomes[1] as { error: { status: number; code: string; headers: Record<string, string> } }).error;
  expect([error.status, error.code, error.headers["Retry-After"]]).toEqual([503, "enqueue_outcome_unknown", "1"]);
});

describe("SqsQueue.sendBatch tells a send that never left from one that may have reached SQS", () => {
  const entries = [{ id: "0", body: JSON.stringify({ probe: true }) }];

  test("connection refused: the SDK's error (nothing was sent)", async () => {
    const client = createSqsClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9" });
    try {
      const err = await new SqsQueue(client, "http://127.0.0.1:9/000000000000/none", { timeoutMs: 5000 }).sendBatch(entries).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(SqsOutcomeUnknownError);
    } finally {
      client.destroy();
    }
  });

  test("connection dropped after the request was written: SqsOutcomeUnknownError, before the deadline; then sends work again", async () => {
    const proxy = await TcpProxy.forUrl(sqsEndpoint()).start();
    const client = createSqsClient({ region: "us-east-1", endpoint: proxy.rewrite(sqsEndpoint()) });
    try {
      const queue = new SqsQueue(client, h.c.queue.queueUrl, { timeoutMs: 10_000 });
      proxy.freeze("mid-connection");
      const started = Date.now();
      const pending = queue.sendBatch(entries).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      proxy.cut(); // every later attempt is refused at once
      const err = await pending;
      expect(err).toBeInstanceOf(SqsOutcomeUnknownError);
      expect((err as Error).message).toContain("may have reached SQS");
      expect(Date.now() - started).toBeLessThan(10_000);
      proxy.restore();
      proxy.thaw();
      // The same client sends again once the connection is back.
      await h.eventually(async () => (await queue.sendBatch(entries).catch(() => [])).some((o) => o.ok), 10_000);
    } finally {
      client.destroy();
      await proxy.stop();
    }
  });
});
