import { SQSClient } from "@aws-sdk/client-sqs";
import { SendBatcher } from "../../src/queue/send-batcher";
import { SqsQueue, type SendEntry, type SendOutcome } from "../../src/queue/sqs-queue";

/**
 * SQS can fail single entries of a SendMessageBatch; the emulator never does, so this queue
 * reproduces that answer. Everything else about batching is covered against the emulator.
 */
class RecordingQueue extends SqsQueue {
  readonly calls: string[][] = [];
  constructor(private readonly failBodies: Set<string> = new Set(), private readonly throwAll = false) {
    super(new SQSClient({ region: "us-east-1" }), "http://127.0.0.1:9/000000000000/none");
  }
  override async sendBatch(entries: readonly SendEntry[]): Promise<SendOutcome[]> {
    this.calls.push(entries.map((e) => e.body));
    await new Promise((r) => setTimeout(r, 1));
    if (this.throwAll) throw new Error("connection refused");
    return entries.map((e) => (this.failBodies.has(e.body) ? { id: e.id, ok: false, error: "InternalError" } : { id: e.id, ok: true }));
  }
}

describe("SendBatcher", () => {
  test("coalesces concurrent sends into batches of at most 10", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    await Promise.all(Array.from({ length: 25 }, (_, i) => b.send(`m${i}`)));
    expect(q.calls.map((c) => c.length)).toEqual([10, 10, 5]);
    expect(q.calls.flat().sort()).toEqual(Array.from({ length: 25 }, (_, i) => `m${i}`).sort());
  });

  test("a failed entry rejects only its own sender", async () => {
    const q = new RecordingQueue(new Set(["bad"]));
    const b = new SendBatcher(q, 5);
    const results = await Promise.allSettled(["a", "bad", "c"].map((m) => b.send(m)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(q.calls).toHaveLength(1);
  });

  test("a failed call rejects every sender in it", async () => {
    const b = new SendBatcher(new RecordingQueue(new Set(), true), 1);
    const results = await Promise.allSettled(["a", "b"].map((m) => b.send(m)));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
  });

  test("a batch never exceeds 256 KiB", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    const big = "x".repeat(100 * 1024);
    await Promise.all([b.send(big), b.send(big), b.send(big)]);
    for (const call of q.calls) expect(call.reduce((n, m) => n + m.length, 0)).toBeLessThanOrEqual(256 * 1024);
    expect(q.calls.length).toBeGreaterThanOrEqual(2);
  });

  test("drain waits for sends in flight", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 50);
    const p = b.send("late");
    await b.drain();
    expect(q.calls).toEqual([["late"]]);
    await p;
  });
});
