import { startHarness, type Harness } from "../helpers/harness";
import { SendBatcher } from "../../src/queue/send-batcher";
import type { SqsQueue } from "../../src/queue/sqs-queue";

/**
 * The SQS emulator refuses every character outside the Basic Multilingual Plane (real SQS refuses
 * U+FFFE, U+FFFF and control characters), so these tests against it prove the queue encoding.
 */
const TRICKY = { emoji: "order 😀 🎉", nonchar: "a\uFFFEb\uFFFFc", accents: "café – ünïcödé", cjk: "注文", "key_😀": 1, rtl: "\u202Eabc" };

/** Re-inserts the raw emoji into queue bodies, as an encoder that missed a character would: the emulator then refuses them. */
function unescapeEmojiOnSend(queue: SqsQueue): () => void {
  const original = queue.sendBatch.bind(queue);
  queue.sendBatch = (entries, signal) => original(entries.map((e) => ({ ...e, body: e.body.replace(/\\ud83d\\ude00/g, "😀") })), signal);
  return () => {
    queue.sendBatch = original;
  };
}

describe("queue encoding: any valid JSON string reaches Postgres unchanged", () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    key = await h.key("enc");
  });
  afterAll(() => h.close());

  const payloadOf = async (id: string) => {
    const rows = await h.eventually(async () => {
      const r = await h.sql<{ payload: unknown }>("SELECT payload FROM events WHERE id = $1 AND tenant_id = $2", [id, "enc"]);
      return r.length === 1 ? r : undefined;
    });
    return rows[0]!.payload;
  };

  test("emoji, U+FFFE/U+FFFF and other non-ASCII text are accepted and stored unchanged", async () => {
    const res = await h.request("POST", "/events", { key, body: { type: "t.x", source: "src 😀", payload: TRICKY } });
    expect(res.status).toBe(202);
    expect(await payloadOf(res.body.id)).toEqual(TRICKY);
    const rows = await h.sql<{ source: string }>("SELECT source FROM events WHERE id = $1", [res.body.id]);
    expect(rows[0]!.source).toBe("src 😀");
  });

  test("a tricky payload does not fail the requests packed with it", async () => {
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => h.request("POST", "/events", { key, body: { type: "t.x", payload: i === 7 ? TRICKY : { i } } })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(202));
    expect(await payloadOf(responses[7]!.body.id)).toEqual(TRICKY);
  });

  test("a batch with tricky payloads is wholly accepted", async () => {
    const events = Array.from({ length: 25 }, (_, i) => ({ type: "t.x", payload: i % 5 === 0 ? TRICKY : { i } }));
    const res = await h.request("POST", "/events/batch", { key, body: { events } });
    expect(res.status).toBe(202);
    expect(res.body.data).toHaveLength(25);
    for (const [i, d] of (res.body.data as Array<{ id: string }>).entries()) expect(await payloadOf(d.id)).toEqual(events[i]!.payload);
  });

  test("the send batcher: an entry the queue refuses fails only its own sender, with the cause", async () => {
    const batcher = new SendBatcher(h.c.queue, 2);
    const good = (i: number) => JSON.stringify({ n: i });
    // Thirty bodies packed into ten entries; one of them carries a character the emulator refuses.
    const bodies = Array.from({ length: 30 }, (_, i) => (i === 4 ? '{"bad":"😀"}' : good(i)));
    const outcomes = await batcher.sendMany(bodies.map((body) => ({ body, bytes: Buffer.byteLength(body) })));
    expect(outcomes.filter((o) => o.status === "rejected")).toHaveLength(1);
    const refused = outcomes[4]!;
    expect(refused.status).toBe("rejected");
    const reason = (refused as PromiseRejectedResult).reason as { inputFault: boolean; message: string };
    expect(reason.inputFault).toBe(true);
    expect(reason.message).toMatch(/\S/);
  });

  test("a request whose entry is still refused answers 400 with the cause logged; the requests packed with it are 202", async () => {
    const restore = unescapeEmojiOnSend(h.c.queue);
    try {
      const responses = await Promise.all(
        Array.from({ length: 40 }, (_, i) => h.request("POST", "/events", { key, body: { type: "t.x", payload: i === 3 ? { s: "😀" } : { i } } })),
      );
      expect(responses[3]!.status).toBe(400);
      expect(responses[3]!.body.error.code).toBe("event_refused_by_queue");
      expect(responses[3]!.headers.get("retry-after")).toBeNull();
      expect(responses.filter((_, i) => i !== 3).map((r) => r.status)).toEqual(Array(39).fill(202));
      expect(h.logs.some((l) => /refused/i.test(l) && l.includes("enc"))).toBe(true);
    } finally {
      restore();
    }
  });

  test("a batch with one refused event names which events were accepted (with ids) and which were not", async () => {
    const restore = unescapeEmojiOnSend(h.c.queue);
    try {
      const events = Array.from({ length: 25 }, (_, i) => ({ type: "t.x", payload: i === 11 ? { s: "😀" } : { i, batch: "partial" } }));
      const res = await h.request("POST", "/events/batch", { key, body: { events } });
      expect(res.status).toBe(207);
      const data = res.body.data as Array<Record<string, any>>;
      expect(data).toHaveLength(25);
      data.forEach((d, i) => expect(d.index).toBe(i));
      const accepted = data.filter((d) => d.status === "accepted");
      expect(accepted).toHaveLength(24);
      expect(data[11]).toMatchObject({ index: 11, status: "rejected", error: { code: "event_refused_by_queue" }, retryable: false });
      expect(data[11]!.id).toBeUndefined();
      for (const d of accepted) expect(await payloadOf(d.id)).toMatchObject({ batch: "partial" });
    } finally {
      restore();
    }
  });

  test("a batch whose events the queue cannot take at all is a 503 naming nothing accepted", async () => {
    const queue = h.c.queue;
    const original = queue.sendBatch.bind(queue);
    queue.sendBatch = async () => {
      throw new Error("connect ECONNREFUSED");
    };
    try {
      const res = await h.request("POST", "/events/batch", { key, body: { events: [{ type: "t.x", payload: 1 }, { type: "t.x", payload: 2 }] } });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).not.toBeNull();
    } finally {
      queue.sendBatch = original;
    }
  });
});
