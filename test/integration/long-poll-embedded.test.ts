import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config";
import { buildContainer, type Container } from "../../src/container";
import { startApi, type RunningApi } from "../../src/api/server";
import { IngestWorker } from "../../src/ingest/ingest-worker";
import { createLogger } from "../../src/observability/logger";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { createApiKey } from "../../src/store/api-keys";
import { Consumer, TriggersClient } from "../../src/client";
import { sqsEndpoint, uniqueName } from "../helpers/harness";

/**
 * The embedded default (PGlite, one process): long polls are woken by the worker's commit through
 * PGlite's in-process LISTEN/NOTIFY, and the client library works against it.
 */
describe("long polling on the embedded PGlite store", () => {
  let dir: string;
  let c: Container;
  let api: RunningApi;
  let worker: IngestWorker;
  let url: string;
  let key: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "triggers-embedded-"));
    const config = loadConfig({
      TRIGGERS_DATA_DIR: dir,
      SQS_ENDPOINT: sqsEndpoint(),
      SQS_QUEUE_NAME: uniqueName("q"),
      PORT: "0",
      WORKER_WAIT_SECONDS: "1",
      WORKER_RECEIVERS: "2",
      REDIS_PREFIX: uniqueName("test"),
      LOG_LEVEL: "warn",
    });
    c = await buildContainer(config, { logger: createLogger("warn") });
    expect(c.db.kind).toBe("pglite");
    await applyMigrations(c.db.migrator, loadMigrations());
    api = await startApi(c);
    worker = new IngestWorker({ prisma: c.db.prisma, queue: c.queue, logger: c.logger, metrics: c.metrics }, { receivers: 2, waitSeconds: 1, visibilitySeconds: 60 });
    worker.start();
    url = `http://127.0.0.1:${api.port}`;
    key = (await createApiKey(c.db.prisma, { tenantId: "embedded", name: "t", scopes: ["events:write", "inbox:read", "events:ack"] })).secret;
  });
  afterAll(async () => {
    await api?.close();
    await worker?.stop();
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the wake-up channel listens, and a waiting request gets the event the worker stores", async () => {
    expect(api.deps.wakeups.listening).toBe(true);
    const client = new TriggersClient({ baseUrl: url, apiKey: key });
    const waiting = client.lease({ waitSeconds: 20 });
    const deadline = Date.now() + 10_000;
    while (api.deps.wakeups.waiting < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const notificationsBefore = api.deps.wakeups.stats.notifications;
    const sent = await client.send({ type: "embedded.test", payload: {} });
    const { events } = await waiting;
    expect(events.map((e) => e.id)).toEqual([sent.id]);
    expect(api.deps.wakeups.stats.notifications).toBeGreaterThan(notificationsBefore);
    // Lease ownership holds here too: nack needs the lease_id.
    const noLease = await fetch(`${url}/events/${sent.id}/nack`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: "{}" });
    expect(noLease.status).toBe(400);
    await client.nack(sent.id, events[0]!.lease_id!, 0);
  });

  test("a Consumer handles every event once", async () => {
    const client = new TriggersClient({ baseUrl: url, apiKey: key });
    const sent = await client.sendBatch(Array.from({ length: 50 }, (_, i) => ({ type: "embedded.batch", payload: { i } })));
    const seen = new Map<string, number>();
    const want = new Set([...sent.map((s) => s.id)]);
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const consumer = new Consumer({
      baseUrl: url,
      apiKey: key,
      waitSeconds: 2,
      filter: { type: "embedded.batch" },
      handleMessage: async (e) => {
        seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
        if ([...want].every((id) => seen.has(id))) done();
      },
    });
    consumer.start();
    await all;
    await consumer.stop();
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(50);
  });
});
