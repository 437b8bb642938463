import { acceptEvents, type AcceptInput } from "../../src/ingest/accept-events";
import { parseEnvelope } from "../../src/domain/envelope";
import { SendBatcher } from "../../src/queue/send-batcher";
import { SqsOutcomeUnknownError, SqsQueue, type SendEntry, type SendOutcome } from "../../src/queue/sqs-queue";
import { startHarness, type Harness } from "../helpers/harness";

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
