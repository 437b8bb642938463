import { startHarness, type Harness } from "../helpers/harness";
import { decodeMessage, storeMessages } from "../../src/ingest/store-messages";
import { startIngestWorker } from "../../src/roles/worker";
import { counterTotal } from "../helpers/metrics";
import { SqsQueue } from "../../src/queue/sqs-queue";

describe("end-to-end path: POST /events -> SQS -> worker -> Postgres -> GET /inbox -> ack", () => {
  let h: Harness;
  let keyA: string;
  let keyB: string;

  beforeAll(async () => {
    h = await startHarness();
    keyA = await h.key("tenant-a");
    keyB = await h.key("tenant-b");
  });
  afterAll(() => h.close());

  const countRows = async () => Number((await h.sql<{ n: string }>("SELECT count(*) AS n FROM events"))[0]!.n);

  test("an accepted event is stored, leased once, acknowledged, and leaves the inbox", async () => {
    const post = await h.request("POST", "/events", { key: keyA, body: { type: "order.created", payload: { order: 1 }, tags: ["eu"] } });
    expect(post.status).toBe(202);
    expect(post.body).toEqual({ id: expect.stringMatching(/^evt_[0-9A-Z]{26}$/), status: "accepted", received_at: expect.any(String) });
    expect(post.headers.get("location")).toBe(`/events/${post.body.id}`);

    const inbox = await h.eventually(async () => {
      const r = await h.request("GET", "/inbox", { key: keyA });
      return r.body.data.length > 0 ? r : undefined;
    });
    expect(inbox.status).toBe(200);
    expect(inbox.body.data).toHaveLength(1);
    const ev = inbox.body.data[0];
    expect(ev).toMatchObject({ id: post.body.id, type: "order.created", payload: { order: 1 }, tags: ["eu"], status: "delivered", delivery_count: 1 });
    expect(ev.lease_id).toEqual(expect.any(String));

    // Leased: a second poll inside the lease gets nothing.
    expect((await h.request("GET", "/inbox", { key: keyA })).body.data).toEqual([]);

    const ack = await h.request("POST", `/events/${ev.id}/ack`, { key: keyA });
    expect(ack.status).toBe(200);
    expect(ack.body).toEqual({ id: ev.id, status: "acknowledged", acknowledged_at: expect.any(String) });
    const again = await h.request("DELETE", `/events/${ev.id}/ack`, { key: keyA });
    expect(again.status).toBe(200);
    expect(again.body.acknowledged_at).toBe(ack.body.acknowledged_at);

    const rows = await h.sql<{ status: string }>("SELECT status::text FROM deliveries WHERE event_id = $1", [ev.id]);
    expect(rows).toEqual([{ status: "acknowledged" }]);
    expect((await h.request("GET", "/inbox", { key: keyA })).body.data).toEqual([]);
  });

  test("bad input and bad keys answer 400/401 with the error shape and store nothing", async () => {
    const before = await countRows();
    const cases = [
      { opts: { key: keyA, raw: '{"type":"a",', headers: { "Content-Type": "application/json" } }, status: 400, code: "invalid_json" },
      { opts: { key: keyA, body: { payload: {} } }, status: 400, code: "validation_failed" },
      { opts: { key: keyA, body: { type: "a" } }, status: 400, code: "validation_failed" },
      { opts: { body: { type: "a", payload: {} } }, status: 401, code: "unauthorized" },
      { opts: { key: "trg_wrongwrongwrongwrong", body: { type: "a", payload: {} } }, status: 401, code: "unauthorized" },
    ];
    for (const c of cases) {
      const res = await h.request("POST", "/events", c.opts);
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: c.status, code: c.code });
      expect(res.body.error).toEqual({ code: c.code, message: expect.any(String), details: expect.any(Array) });
    }
    const missingType = await h.request("POST", "/events", { key: keyA, body: { payload: {} } });
    expect(missingType.body.error.details).toEqual([expect.objectContaining({ path: "type" })]);
    // Give a worker time to store anything that slipped through.
    await new Promise((r) => setTimeout(r, 300));
    expect(await countRows()).toBe(before);
    expect((await h.c.queue.depth()).visible).toBe(0);
  });

  test("a key of tenant A can neither see nor ack tenant B's event (404)", async () => {
    const post = await h.request("POST", "/events", { key: keyB, body: { type: "secret.thing", payload: { b: true } } });
    expect(post.status).toBe(202);
    const id = post.body.id as string;
    await h.eventually(async () => (await h.sql("SELECT 1 FROM events WHERE id = $1", [id])).length === 1);
    expect((await h.request("GET", `/events/${id}`, { key: keyA })).status).toBe(404);
    expect((await h.request("POST", `/events/${id}/ack`, { key: keyA })).status).toBe(404);
    expect((await h.request("DELETE", `/events/${id}/ack`, { key: keyA })).status).toBe(404);
    const inboxA = await h.request("GET", "/inbox", { key: keyA });
    expect(inboxA.body.data.map((e: { id: string }) => e.id)).not.toContain(id);
    expect((await h.sql<{ status: string }>("SELECT status::text FROM deliveries WHERE event_id = $1", [id]))[0]!.status).toBe("pending");
    expect((await h.request("GET", `/events/${id}`, { key: keyB })).body).toMatchObject({ id, status: "pending" });
  });
});

describe("worker idempotency against the real queue", () => {
  let h: Harness;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    key = await h.key("tenant-w");
  });
  afterAll(() => h.close());

  /** A worker of this harness (built by the worker role), one receiver, 1 s visibility. */
  const worker = (queue: SqsQueue = h.c.queue) => startIngestWorker(h.c, { queue, receivers: 1, visibilitySeconds: 1 });
  const storeDeps = () => ({ prisma: h.c.db.prisma, logger: h.c.logger, metrics: h.c.metrics });

  test("a message received twice (visibility expired before delete) gives one row", async () => {
    const post = await h.request("POST", "/events", { key, body: { type: "twice", payload: { n: 1 } } });
    expect(post.status).toBe(202);
    const first = await h.c.queue.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 1 });
    expect(first).toHaveLength(1);
    // Let the visibility timeout lapse without deleting: SQS hands the message out again.
    await new Promise((r) => setTimeout(r, 1500));
    const second = await h.c.queue.receive({ max: 10, waitSeconds: 2, visibilitySeconds: 30 });
    expect(second).toHaveLength(1);
    expect(second[0]!.receiveCount).toBe(2);
    // The worker's store step, once per delivery of the message; then the delete the worker would do.
    expect(await storeMessages(storeDeps(), first.map(decodeMessage))).toMatchObject({ inserted: 1, duplicates: 0, deletable: [first[0]!.receiptHandle] });
    expect(await storeMessages(storeDeps(), second.map(decodeMessage))).toMatchObject({ inserted: 0, duplicates: 1, deletable: [second[0]!.receiptHandle] });
    expect(await h.c.queue.deleteBatch([second[0]!.receiptHandle])).toEqual([]);
    expect(await h.sql("SELECT id FROM events WHERE id = $1", [post.body.id])).toHaveLength(1);
  });

  test("a batch larger than a SendMessageBatch travels packed and is stored whole", async () => {
    const events = Array.from({ length: 30 }, (_, i) => ({ type: "packed", payload: { i } }));
    const post = await h.request("POST", "/events/batch", { key, body: { events } });
    expect(post.status).toBe(202);
    const ids = (post.body.data as Array<{ id: string }>).map((d) => d.id);
    // 30 events in at most 10 messages: several share a body.
    const depth = await h.c.queue.depth();
    expect(depth.visible + depth.inFlight).toBeLessThanOrEqual(10);
    const before = { inserted: await counterTotal(h.c.metrics.workerRowsInserted), duplicates: await counterTotal(h.c.metrics.workerDuplicates), poison: await counterTotal(h.c.metrics.workerPoison) };
    const w = worker();
    try {
      await h.eventually(async () => (await h.sql("SELECT id FROM events WHERE id = ANY($1)", [ids])).length === 30, 10_000);
      await h.eventually(async () => {
        const d = await h.c.queue.depth();
        return d.visible + d.inFlight === 0;
      }, 10_000);
    } finally {
      await w.stop();
    }
    expect({
      inserted: (await counterTotal(h.c.metrics.workerRowsInserted)) - before.inserted,
      duplicates: (await counterTotal(h.c.metrics.workerDuplicates)) - before.duplicates,
      poison: (await counterTotal(h.c.metrics.workerPoison)) - before.poison,
    }).toEqual({ inserted: 30, duplicates: 0, poison: 0 });
    expect((await h.sql<{ id: string }>("SELECT id FROM events WHERE id = ANY($1)", [ids])).map((r) => r.id).sort()).toEqual([...ids].sort());
  });

  test("a worker that dies after the insert and before the delete loses and duplicates nothing", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await h.request("POST", "/events", { key, body: { type: "crash", payload: { i } } });
      ids.push(r.body.id);
    }
    // A queue whose delete never happens: the process "dies" right after the commit.
    class CrashBeforeDelete extends SqsQueue {
      override async deleteBatch(): Promise<string[]> {
        throw new Error("process killed");
      }
    }
    const deleteErrors = await counterTotal(h.c.metrics.workerErrors, { stage: "delete" });
    const crashing = worker(new CrashBeforeDelete(h.c.sqs, h.c.queue.queueUrl));
    try {
      await h.eventually(async () => (await h.sql("SELECT id FROM events WHERE id = ANY($1)", [ids])).length === 5, 10_000);
      await h.eventually(async () => (await counterTotal(h.c.metrics.workerErrors, { stage: "delete" })) > deleteErrors, 10_000);
    } finally {
      await crashing.stop();
    }
    expect(h.logs.some((l) => l.includes("delete failed; the messages will be deduplicated on redelivery"))).toBe(true);

    // A healthy worker picks the messages up again after their visibility timeout (1 s). Its own
    // visibility is long enough to commit and delete on a loaded machine: with 1 s, a slow commit
    // lets the message be received again, and deleting with the stale receipt deletes nothing.
    const healthy = startIngestWorker(h.c, { receivers: 1, visibilitySeconds: 30 });
    try {
      await h.eventually(async () => (await h.c.queue.depth()).visible + (await h.c.queue.depth()).inFlight === 0, 10_000);
    } finally {
      await healthy.stop();
    }
    const rows = await h.sql<{ id: string }>("SELECT id FROM events WHERE id = ANY($1)", [ids]);
    expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
  });
});
