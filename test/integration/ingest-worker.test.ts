import { startHarness, type Harness } from "../helpers/harness";
import type { StoreMessagesFn } from "../../src/ingest/store-messages";
import { startIngestWorker } from "../../src/roles/worker";
import { counterTotal } from "../helpers/metrics";


describe("ingest worker: a commit that fails while the worker stops", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h.close());

  test("each failed attempt counts once in triggers_worker_errors_total{stage=insert}, and the messages stay in SQS", async () => {
    const key = await h.key("stop-failing");
    for (let i = 0; i < 3; i++) expect((await h.request("POST", "/events", { key, body: { type: "stop.failing", payload: { i } } })).status).toBe(202);
    // The database is unreachable: every commit attempt fails, and the worker holds the batch and retries.
    let attempts = 0;
    const unreachable: StoreMessagesFn = async () => {
      attempts++;
      throw new Error("connection terminated unexpectedly");
    };
    const before = await counterTotal(h.c.metrics.workerErrors, { stage: "insert" });
    const worker = startIngestWorker(h.c, { receivers: 2, visibilitySeconds: 30, store: unreachable });
    await h.eventually(async () => attempts >= 1, 10_000);
    // Stopping hands the held batch back after its next failed attempt.
    await worker.stop();
    expect(h.logs.some((l) => l.includes("insert failed; holding the batch and retrying"))).toBe(true);
    expect(h.logs.some((l) => l.includes("insert failed; batch left for redelivery"))).toBe(true);
    expect((await counterTotal(h.c.metrics.workerErrors, { stage: "insert" })) - before).toBe(attempts);
    // Nothing was stored or deleted: the messages reappear after their visibility timeout.
    expect(await h.sql("SELECT id FROM events WHERE tenant_id = 'stop-failing'")).toEqual([]);
    const depth = await h.c.queue.depth();
    expect(depth.visible + depth.inFlight).toBeGreaterThanOrEqual(1);
  });
});
