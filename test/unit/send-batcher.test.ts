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

/** The bodies an entry carries: one, or the packed array's parts. */
const unpack = (entry: string): string[] => (entry.startsWith("[") ? (JSON.parse(entry) as unknown[]).map((v) => JSON.stringify(v)) : [entry]);
const body = (i: number) => JSON.stringify({ n: i });

describe("SendBatcher", () => {
  test("ten or fewer waiting sends go out as one entry each, in one call", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    await Promise.all(Array.from({ length: 7 }, (_, i) => b.send(body(i))));
    expect(q.calls).toEqual([Array.from({ length: 7 }, (_, i) => body(i))]);
  });

  test("more waiting sends than entries are packed into at most 10 entries of one call", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    await Promise.all(Array.from({ length: 25 }, (_, i) => b.send(body(i))));
    expect(q.calls).toHaveLength(1);
    expect(q.calls[0]!.length).toBeLessThanOrEqual(10);
    expect(q.calls[0]!.flatMap(unpack)).toEqual(Array.from({ length: 25 }, (_, i) => body(i)));
  });

  test("sends arriving while a call is in flight share the next call", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    const first = b.send(body(0));
    await new Promise((r) => setImmediate(r)); // the first call is now in flight
    const rest = Array.from({ length: 5 }, (_, i) => b.send(body(i + 1)));
    await Promise.all([first, ...rest]);
    expect(q.calls.map((c) => c.flatMap(unpack).length)).toEqual([1, 5]);
  });

  test("a call never carries more than 500 events", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    await Promise.all(Array.from({ length: 1200 }, (_, i) => b.send(body(i))));
    expect(q.calls.map((c) => c.flatMap(unpack).length)).toEqual([500, 500, 200]);
    expect(Math.max(...q.calls.flat().map((e) => unpack(e).length))).toBe(50);
  });

  test("a failed entry rejects only the senders it carried", async () => {
    const q = new RecordingQueue(new Set([body(1)]));
    const b = new SendBatcher(q, 5);
    const results = await Promise.allSettled([0, 1, 2].map((i) => b.send(body(i))));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(q.calls).toHaveLength(1);
  });

  test("a failed call rejects every sender in it", async () => {
    const b = new SendBatcher(new RecordingQueue(new Set(), true), 1);
    const results = await Promise.allSettled([0, 1].map((i) => b.send(body(i))));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
  });

  test("a call never exceeds 256 KiB, packing included", async () => {
    const q = new RecordingQueue();
    const b = new SendBatcher(q, 5);
    const big = JSON.stringify("x".repeat(100 * 1024));
    const small = Array.from({ length: 40 }, () => JSON.stringify("y".repeat(1000)));
    await Promise.all([big, big, ...small, big].map((m) => b.send(m)));
    for (const call of q.calls) expect(call.reduce((n, m) => n + Buffer.byteLength(m), 0)).toBeLessThanOrEqual(256 * 1024);
    expect(q.calls.length).toBeGreaterThanOrEqual(2);
    expect(q.calls.flat().flatMap(unpack)).toHaveLength(43);
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
