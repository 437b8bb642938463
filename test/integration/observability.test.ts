import { startHarness, sqsEndpoint, uniqueName, type Harness } from "../helpers/harness";
import type { IngestWorker } from "../../src/ingest/ingest-worker";
import { QueueDepthPoller } from "../../src/observability/queue-depth-poller";
import { startMetricsServer } from "../../src/observability/metrics-server";
import { startScheduler } from "../../src/roles/scheduler";
import { startIngestWorker } from "../../src/roles/worker";
import { freePort } from "../../src/dev/local-services";

/** One sample of Prometheus text: name, labels, value. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(-?(?:[0-9.]+(?:e[+-]?\d+)?|[Nn]a[Nn]|[+-]?Inf))(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus text exposition format 0.0.4; throws on any line that is neither a comment nor a sample. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) throw new Error(`bad comment line: ${line}`);
      if (m[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(m[3]!)) throw new Error(`bad type: ${line}`);
        typed.add(m[2]!);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? "";
    for (const l of body.matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const family = m[1]!.replace(/_(bucket|sum|count|total|created)$/, "");
    if (!typed.has(m[1]!) && !typed.has(family)) throw new Error(`sample without # TYPE: ${line}`);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample matching name and labels (0 when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.reduce((sum, s) => sum + s.value, 0);
}

const MARKER = `payload-marker-${uniqueName("m")}`;

describe("observability: metrics, request logs, readiness", () => {
  let h: Harness;
  let key: string;
  let worker: IngestWorker | undefined;

  beforeAll(async () => {
    // The worker is started by the test, so queue depth can be seen before and after it drains.
    h = await startHarness({ worker: false });
    key = await h.key("obs");
  });
  afterAll(async () => {
    await worker?.stop();
    await h.close();
  });

  const scrape = async () => {
    const res = await h.request("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(res.text);
  };

  test("/metrics is Prometheus text and every counter, gauge and histogram moves with traffic", async () => {
    const before = await scrape();
    // Process metrics are on.
    expect(value(before, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(value(before, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);

    // Ingest: three events, one rejected by auth before any route ran, one unknown route.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await h.request("POST", "/events", { key, body: { type: "obs.test", payload: { marker: MARKER, i } } });
      expect(res.status).toBe(202);
      ids.push(res.body.id as string);
    }
    expect((await h.request("GET", "/inbox")).status).toBe(401);
    expect((await h.request("GET", `/events/${ids[0]}`, { key: "trg_not_a_real_key_000000000000000" })).status).toBe(401);
    expect((await h.request("GET", "/no/such/route")).status).toBe(404);

    // Queue depth, before any worker ran: the three messages are visible.
    const poller = new QueueDepthPoller({ queues: { main: h.c.queue, dlq: h.c.dlq }, metrics: h.c.metrics, logger: h.c.logger });
    await poller.refresh();
    let s = await scrape();
    expect(value(s, "triggers_queue_messages", { queue: "main", state: "visible" })).toBe(3);
    expect(s.some((x) => x.name === "triggers_queue_messages" && x.labels.queue === "dlq" && x.labels.state === "visible")).toBe(true);

    // A redelivered message: the first one's body sent once more, so the worker sees a duplicate.
    const [first] = await h.c.queue.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 30 });
    expect(first).toBeDefined();
    await h.c.queue.sendBatch([{ id: "dup", body: first!.body! }]);
    await h.c.queue.changeVisibility([first!.receiptHandle], 0);

    worker = startIngestWorker(h.c, { receivers: 2, visibilitySeconds: 30 });
    await h.eventually(async () => value(await scrape(), "triggers_worker_duplicates_total") >= 1, 10_000);
    await h.eventually(async () => (await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'obs'"))[0]!.n === 3);
    await poller.refresh();

    // Inbox: lease, nack, lease again, ack; a lease past max deliveries would count as dead (covered by the inbox tests).
    const leased = await h.request("GET", "/inbox?limit=1", { key });
    expect(leased.body.data).toHaveLength(1);
    const leasedId = leased.body.data[0].id as string;
    expect((await h.request("POST", `/events/${leasedId}/nack`, { key, body: { lease_id: leased.body.data[0].lease_id } })).status).toBe(200);
    expect((await h.request("GET", "/inbox?limit=1", { key })).body.data[0].id).toBe(leasedId);
    expect((await h.request("POST", `/events/${leasedId}/ack`, { key })).status).toBe(200);

    // Expiry: one run of the scheduler's timer records its duration.
    const scheduler = await startScheduler(h.c, { everyMs: 60_000, firstRunDelayMs: 0 });
    await h.eventually(async () => value(await scrape(), "triggers_expiry_run_seconds_count") >= 1);
    await scheduler.close();

    s = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => value(s, name, labels) - value(before, name, labels);
    expect(delta("triggers_http_requests_total", { method: "POST", route: "/events", status: "202" })).toBe(3);
    // Rejected by auth before the route ran: still labelled with the route template.
    expect(delta("triggers_http_requests_total", { method: "GET", route: "/inbox", status: "401" })).toBe(1);
    expect(delta("triggers_http_requests_total", { method: "GET", route: "/events/:id", status: "401" })).toBe(1);
    expect(delta("triggers_http_requests_total", { method: "GET", route: "unmatched", status: "404" })).toBe(1);
    expect(delta("triggers_http_requests_total", { method: "POST", route: "/events/:id/nack", status: "200" })).toBe(1);
    expect(delta("triggers_http_requests_total", { method: "POST", route: "/events/:id/ack", status: "200" })).toBe(1);
    // Every route label is a template or "unmatched": never a path with an id, never a regex.
    const routes = new Set(s.filter((x) => x.name === "triggers_http_requests_total").map((x) => x.labels.route!));
    for (const r of routes) expect(r).toMatch(/^(unmatched|(\/[a-z.]+|\/:id)+)$/);
    expect(delta("triggers_http_request_duration_seconds_count", { method: "POST", route: "/events" })).toBe(3);
    expect(delta("triggers_http_request_duration_seconds_bucket", { method: "POST", route: "/events", le: "+Inf" })).toBe(3);
    expect(delta("triggers_events_accepted_total")).toBe(3);
    expect(value(s, "triggers_enqueue_failures_total")).toBe(0);
    expect(delta("triggers_sqs_send_batch_size_count")).toBeGreaterThanOrEqual(1);
    expect(delta("triggers_worker_batches_total")).toBeGreaterThanOrEqual(1);
    expect(delta("triggers_worker_rows_inserted_total")).toBe(3);
    expect(delta("triggers_worker_duplicates_total")).toBe(1);
    expect(delta("triggers_ingest_lag_seconds_count")).toBe(4);
    expect(delta("triggers_inbox_leased_total")).toBe(2);
    expect(delta("triggers_inbox_nacks_total")).toBe(1);
    expect(delta("triggers_inbox_acks_total")).toBe(1);
    expect(value(s, "triggers_inbox_dead_total")).toBe(0);
    expect(delta("triggers_expiry_run_seconds_count")).toBe(1);
    expect(s.some((x) => x.name === "triggers_expiry_deleted_total" || x.name === "triggers_expiry_failures_total")).toBe(true);
    // After the drain the queue is empty again.
    expect(value(s, "triggers_queue_messages", { queue: "main", state: "visible" })).toBe(0);
  });

  test("a request carries its id into the response and its one log line, with tenant and key id", async () => {
    const res = await h.request("POST", "/events", { key, body: { type: "obs.id", payload: { marker: MARKER } }, headers: { "X-Request-Id": "client-req.42:a" } });
    expect(res.status).toBe(202);
    expect(res.headers.get("x-request-id")).toBe("client-req.42:a");
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === "client-req.42:a");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual(
      expect.objectContaining({ msg: "request", method: "POST", route: "/events", path: "/events", status: 202, tenant: "obs", keyId: expect.any(String), ms: expect.any(Number), level: 30, time: expect.any(String) }),
    );

    // A malformed id is replaced by a generated one, which is returned and logged.
    const bad = await h.request("GET", "/healthz", { headers: { "X-Request-Id": "has spaces and {braces}" } });
    const generated = bad.headers.get("x-request-id")!;
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.logs.some((l) => l.includes(`"requestId":"${generated}"`) && l.includes('"route":"/healthz"'))).toBe(true);
    // Without one, each request gets its own.
    const a = await h.request("GET", "/healthz");
    const b = await h.request("GET", "/healthz");
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  test("/healthz is liveness only; /readyz checks Postgres and SQS (and Redis when configured)", async () => {
    expect((await h.request("GET", "/healthz")).body).toEqual({ status: "ok" });
    const ready = await h.request("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: "ready", checks: { postgres: { ok: true }, schema: { ok: true }, sqs: { ok: true } } });
  });

  test("/readyz answers 503 naming a stopped Redis, while /healthz stays 200", async () => {
    const down = await startHarness({ worker: false, env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` } });
    try {
      const res = await down.request("GET", "/readyz");
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect(res.body.error).toEqual({
        code: "not_ready",
        message: "not ready: redis unavailable",
        details: [{ dependency: "redis", message: expect.any(String) }],
      });
      expect((await down.request("GET", "/healthz")).status).toBe(200);
    } finally {
      await down.close();
    }
  });

  test("a missing SQS queue: /readyz names sqs, POST /events answers 503 and counts an enqueue failure", async () => {
    const missing = `${sqsEndpoint()}/000000000000/${uniqueName("missing")}`;
    const down = await startHarness({ worker: false, env: { SQS_QUEUE_URL: missing } });
    try {
      const ready = await down.request("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body.error.details.map((d: { dependency: string }) => d.dependency)).toEqual(["sqs"]);
      const k = await down.key("obs-down");
      const post = await down.request("POST", "/events", { key: k, body: { type: "obs.down", payload: { marker: MARKER } } });
      expect(post.status).toBe(503);
      expect(Number(post.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const s = parsePrometheus((await down.request("GET", "/metrics")).text);
      expect(value(s, "triggers_enqueue_failures_total")).toBe(1);
      expect(value(s, "triggers_events_accepted_total")).toBe(0);
      expect(value(s, "triggers_http_requests_total", { route: "/events", status: "503" })).toBe(1);
    } finally {
      await down.close();
    }
  });

  test("worker/scheduler metrics server: /metrics, /healthz, and /readyz naming the failing dependency", async () => {
    const server = await startMetricsServer({
      registry: h.c.metrics.registry,
      checks: { postgres: () => h.c.db.ping(), sqs: () => h.c.queue.depth() },
      host: "127.0.0.1",
      port: 0,
      logger: h.c.logger,
    });
    const failing = await startMetricsServer({
      registry: h.c.metrics.registry,
      checks: { postgres: () => h.c.db.ping(), redis: () => Promise.reject(new Error("connection refused")) },
      host: "127.0.0.1",
      port: 0,
      logger: h.c.logger,
    });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(value(parsePrometheus(await metrics.text()), "triggers_worker_rows_inserted_total")).toBeGreaterThan(0);
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: "ok" });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready", checks: { postgres: { ok: true }, sqs: { ok: true } } });
      const notReady = await fetch(`http://127.0.0.1:${failing.port}/readyz`);
      expect(notReady.status).toBe(503);
      expect(notReady.headers.get("retry-after")).toBe("5");
      expect(await notReady.json()).toEqual({
        error: { code: "not_ready", message: "not ready: redis unavailable", details: [{ dependency: "redis", message: "connection refused" }] },
      });
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await server.close();
      await failing.close();
    }
  });

  test("the log capture of this whole file holds no API key, no Authorization header and no payload", async () => {
    // A few more requests that fail in ways that might tempt a logger: bad JSON, a bad key, a 400 with the payload.
    await h.request("POST", "/events", { key, raw: `{"type":"x","payload":"${MARKER}"`, headers: { "Content-Type": "application/json" } });
    await h.request("POST", "/events", { key: `${key.slice(0, -4)}zzzz`, body: { type: "obs.badkey", payload: MARKER } });
    await h.request("POST", "/events", { key, body: { type: "bad type!", payload: MARKER } });
    const all = h.logs.join("");
    expect(h.logs.length).toBeGreaterThan(20);
    expect(all).toContain(`"tenant":"obs"`);
    expect(all).not.toContain(key);
    expect(all).not.toContain(key.slice(4, 20)); // not even part of the secret
    expect(all).not.toContain(MARKER);
    expect(all.toLowerCase()).not.toContain("bearer");
    expect(all.toLowerCase()).not.toContain("authorization");
    for (const line of h.logs) expect(() => JSON.parse(line)).not.toThrow();
  });
});
