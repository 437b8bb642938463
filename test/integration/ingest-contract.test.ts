import { startHarness, type Harness } from "../helpers/harness";
import { createApiKey, revokeApiKey } from "../../src/store/api-keys";
import { startIngestWorker } from "../../src/roles/worker";

const ev = (extra: Record<string, unknown> = {}) => ({ type: "order.created", payload: { n: 1 }, ...extra });

describe("ingest contract (Redis, Postgres, SQS emulator)", () => {
  let h: Harness;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ redis: true });
    key = await h.key("ingest");
  });
  afterAll(() => h.close());

  /** POST /events with a raw JSON body, as given. */
  const postRaw = (body: string) => h.request("POST", "/events", { key, raw: body, headers: { "Content-Type": "application/json" } });
  const rowsFor = (tenant: string) => h.sql<{ id: string; idempotency_key: string | null }>("SELECT id, idempotency_key FROM events WHERE tenant_id = $1", [tenant]);

  test("keys are stored only as a hash with a recognisable prefix", async () => {
    const created = await createApiKey(h.c.db.prisma, { tenantId: "hash-check", name: "k", scopes: ["events:write"] });
    expect(created.secret).toMatch(/^trg_[A-Za-z0-9_-]{32}$/);
    const rows = await h.sql<Record<string, unknown>>("SELECT * FROM api_keys WHERE id = $1", [created.id]);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows[0])).not.toContain(created.secret);
    expect(rows[0]!.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  test("a key without the scope gets 403; with it, the route works", async () => {
    const readOnly = await h.key("scopes", ["inbox:read"]);
    const writeOnly = await h.key("scopes", ["events:write"]);
    const post = await h.request("POST", "/events", { key: readOnly, body: ev() });
    expect(post.status).toBe(403);
    expect(post.body.error).toEqual({ code: "forbidden", message: expect.stringContaining("events:write"), details: expect.any(Array) });
    expect((await h.request("GET", "/inbox", { key: writeOnly })).status).toBe(403);
    expect((await h.request("POST", "/events", { key: writeOnly, body: ev() })).status).toBe(202);
    expect((await h.request("GET", "/inbox", { key: readOnly })).status).toBe(200);
  });

  test("a revoked key stops working within 5 seconds", async () => {
    const created = await createApiKey(h.c.db.prisma, { tenantId: "revoke", name: "k", scopes: ["events:write"] });
    expect((await h.request("POST", "/events", { key: created.secret, body: ev() })).status).toBe(202);
    const revokedAt = Date.now();
    expect(await revokeApiKey(h.c.db.prisma, created.id)).toBe(true);
    await h.eventually(async () => (await h.request("POST", "/events", { key: created.secret, body: ev() })).status === 401, 5000);
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });

  test("rate limit: 429 with Retry-After, RateLimit-Policy/RateLimit and X-RateLimit-* headers; per-key override", async () => {
    const limited = await createApiKey(h.c.db.prisma, { tenantId: "rl", name: "k", scopes: ["events:write"], rateLimit: 3 });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await h.request("POST", "/events", { key: limited.secret, body: ev() });
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get("ratelimit-policy")).toBe('"per-key";q=3;w=60');
        expect(last.headers.get("ratelimit")).toMatch(/^"per-key";r=2;t=\d+$/);
        expect(last.headers.get("x-ratelimit-limit")).toBe("3");
        expect(last.headers.get("x-ratelimit-remaining")).toBe("2");
        expect(last.headers.get("x-ratelimit-reset")).toMatch(/^\d+$/);
        // The 202's own headers, written with the collected ones in one go.
        expect(last.headers.get("content-type")).toBe("application/json; charset=utf-8");
        expect(last.headers.get("content-length")).toBe(String(Buffer.byteLength(last.text)));
        expect(last.headers.get("location")).toBe(`/events/${last.body.id}`);
        expect(last.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      }
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
    expect(last!.body.error).toEqual({ code: "rate_limited", message: expect.any(String), details: [] });
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(last!.headers.get("ratelimit")).toMatch(/^"per-key";r=0;t=\d+$/);
    expect(last!.headers.get("x-ratelimit-remaining")).toBe("0");
    // The window lives in Redis, shared by every API process.
    const keys = await h.c.redis!.keys(`${h.config.redisPrefix}:rl*`);
    expect(keys.length).toBeGreaterThan(0);
    // Another key is not affected.
    expect((await h.request("POST", "/events", { key, body: ev() })).status).toBe(202);
  });

  test("Idempotency-Key: a retry answers the same id with Idempotent-Replayed; another body is 409 and enqueues nothing", async () => {
    const tenantKey = await h.key("idem");
    const first = await h.request("POST", "/events", { key: tenantKey, body: ev({ payload: { a: 1 } }), headers: { "Idempotency-Key": "order-77" } });
    expect(first.status).toBe(202);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const retry = await h.request("POST", "/events", { key: tenantKey, body: ev({ payload: { a: 1 } }), headers: { "Idempotency-Key": "order-77" } });
    expect(retry.status).toBe(202);
    expect(retry.body.id).toBe(first.body.id);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    const conflict = await h.request("POST", "/events", { key: tenantKey, body: ev({ payload: { a: 2 } }), headers: { "Idempotency-Key": "order-77" } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe("idempotency_key_reused");
    await h.eventually(async () => (await rowsFor("idem")).length === 1);
    await new Promise((r) => setTimeout(r, 300));
    const rows = await rowsFor("idem");
    expect(rows).toEqual([{ id: first.body.id, idempotency_key: "order-77" }]);
    // The durable record answers too once Redis forgets the key.
    await h.c.redis!.del((await h.c.redis!.keys(`${h.config.redisPrefix}:idem:*order-77`))[0]!);
    const later = await h.request("POST", "/events", { key: tenantKey, body: ev({ payload: { a: 3 } }), headers: { "Idempotency-Key": "order-77" } });
    expect(later.status).toBe(409);
  });

  test("50 concurrent identical requests end as one row and one id", async () => {
    const tenantKey = await h.key("idem-burst");
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => h.request("POST", "/events", { key: tenantKey, body: ev({ payload: { burst: true } }), headers: { "Idempotency-Key": "burst-1" } })),
    );
    expect(new Set(responses.map((r) => r.status))).toEqual(new Set([202]));
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    expect(responses.filter((r) => r.headers.get("idempotent-replayed") === "true")).toHaveLength(49);
    await h.eventually(async () => (await rowsFor("idem-burst")).length === 1);
    await h.eventually(async () => {
      const d = await h.c.queue.depth();
      return d.visible + d.inFlight === 0;
    });
    expect(await rowsFor("idem-burst")).toHaveLength(1);
  });

  test("validation: field paths for a bad envelope, limits on type, tags, depth and the Idempotency-Key", async () => {
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 40; i++) cur = (cur.n = {}) as Record<string, unknown>;
    const cases: Array<[unknown, string]> = [
      [ev({ type: "bad type!" }), "type"],
      [ev({ type: "a".repeat(129) }), "type"],
      [ev({ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }), "tags"],
      [ev({ tags: ["x".repeat(65)] }), "tags.0"],
      [ev({ payload: deep }), "payload"],
      [ev({ occurred_at: "yesterday" }), "occurred_at"],
      [ev({ extra: 1 }), "extra"],
      [ev({ source: 5 }), "source"],
    ];
    for (const [body, path] of cases) {
      const res = await h.request("POST", "/events", { key, body });
      expect({ path, status: res.status, code: res.body.error.code }).toEqual({ path, status: 400, code: "validation_failed" });
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    }
    const longKey = await h.request("POST", "/events", { key, body: ev(), headers: { "Idempotency-Key": "k".repeat(256) } });
    expect(longKey.status).toBe(400);
    expect(longKey.body.error.details[0].path).toBe("Idempotency-Key");
  });

  test("an event must fit one SQS message with its metadata: 413 event_too_large otherwise, never 503", async () => {
    const fill = (bytes: number) => JSON.stringify(ev({ payload: { blob: "x".repeat(bytes - JSON.stringify(ev({ payload: { blob: "" } })).length) } }));
    expect((await postRaw(fill(255 * 1024))).status).toBe(202);
    // Within MAX_EVENT_BYTES, but its id, tenant, hash and timestamps push the message past 256 KiB.
    const atLimit = await postRaw(fill(256 * 1024));
    expect(atLimit.status).toBe(413);
    expect(atLimit.body.error.code).toBe("event_too_large");
    expect(atLimit.body.error.details).toEqual([{ index: 0, message: expect.stringContaining("the limit is 262144") }]);
    // A batch request may be larger than one event, but each of its events must fit; nothing is accepted otherwise.
    const sibling = { ...ev(), idempotency_key: `oversize-sibling-${Date.now()}` };
    const batch = await h.request("POST", "/events/batch", { key, body: { events: [sibling, JSON.parse(fill(300 * 1024))] } });
    expect(batch.status).toBe(413);
    expect(batch.body.error.code).toBe("event_too_large");
    expect(batch.body.error.details).toEqual([expect.objectContaining({ index: 1 })]);
    // Its sibling's key was not claimed: the same key with another body is a first send, not a 409 or a replay.
    const again = await h.request("POST", "/events", { key, body: ev({ payload: { other: true } }), headers: { "Idempotency-Key": sibling.idempotency_key } });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
  });

  test("415 for non-JSON, 413 for a body over MAX_EVENT_BYTES, 400 for __proto__ keys", async () => {
    const text = await h.request("POST", "/events", { key, raw: "type=a", headers: { "Content-Type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe("unsupported_media_type");
    const huge = JSON.stringify(ev({ payload: { blob: "x".repeat(300 * 1024) } }));
    const big = await postRaw(huge);
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("payload_too_large");
    const proto = await postRaw('{"type":"a","payload":{"__proto__":{"polluted":true}}}');
    expect(proto.status).toBe(400);
    expect(proto.body.error.code).toBe("forbidden_key");
    const ctor = await postRaw('{"type":"a","payload":{"constructor":{"prototype":{"polluted":true}}}}');
    expect(ctor.status).toBe(400);
    // Escaped spellings of both keys are refused too.
    for (const escaped of ['{"type":"a","payload":{"\\u005f_proto__":{"polluted":true}}}', '{"type":"a","payload":{"constructo\\u0072":{"prototype":{"polluted":true}}}}']) {
      const r = await postRaw(escaped);
      expect([r.status, r.body.error.code]).toEqual([400, "forbidden_key"]);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Other \u escapes and the words in values are fine.
    expect((await postRaw('{"type":"a","payload":{"note":"\\u00e9 the constructor of __proto__"}}')).status).toBe(202);
  });

  test("the body must be UTF-8: invalid bytes answer 400 invalid_encoding; a leading BOM is ignored", async () => {
    const send = (body: Buffer) => fetch(`${h.url}/events`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: new Uint8Array(body) });
    const invalid = await send(Buffer.concat([Buffer.from('{"type":"a","payload":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]));
    expect([invalid.status, ((await invalid.json()) as { error: { code: string } }).error.code]).toEqual([400, "invalid_encoding"]);
    const bom = await send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"type":"a","payload":{"t":"\u00e9"}}')]));
    expect(bom.status).toBe(202);
    // A second BOM is dropped too, whichever parser the text goes to.
    for (const payload of ['{"t":1}', '{"t":"\\u00e9"}']) {
      const twice = await send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), Buffer.from(`{"type":"a","payload":${payload}}`)]));
      expect(twice.status).toBe(202);
    }
  });

  test("batch: every event validated first; one bad index enqueues nothing; a good batch answers per-event ids", async () => {
    const tenantKey = await h.key("batch");
    const bad = await h.request("POST", "/events/batch", { key: tenantKey, body: { events: [ev(), { payload: 1 }, ev(), ev({ tags: 5 })] } });
    expect(bad.status).toBe(400);
    const indexes = new Set(bad.body.error.details.map((d: { index: number }) => d.index));
    expect(indexes).toEqual(new Set([1, 3]));
    const good = await h.request("POST", "/events/batch", {
      key: tenantKey,
      body: { events: Array.from({ length: 25 }, (_, i) => ev({ payload: { i }, ...(i === 0 ? { idempotency_key: "b-0" } : {}) })) },
    });
    expect(good.status).toBe(202);
    expect(good.body.data).toHaveLength(25);
    const ids = good.body.data.map((d: { id: string }) => d.id);
    expect(new Set(ids).size).toBe(25);
    await h.eventually(async () => (await rowsFor("batch")).length === 25);
    await new Promise((r) => setTimeout(r, 200));
    expect((await rowsFor("batch")).map((r) => r.id).sort()).toEqual([...ids].sort());
    const tooMany = await h.request("POST", "/events/batch", { key: tenantKey, body: { events: Array.from({ length: 101 }, () => ev()) } });
    expect(tooMany.status).toBe(400);
  });
});

describe("status receipt before the worker stores the event", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, redis: true });
  });
  afterAll(() => h.close());

  test("GET /events/{id} answers queued, then the stored event", async () => {
    const key = await h.key("receipt");
    const other = await h.key("receipt-other");
    const post = await h.request("POST", "/events", { key, body: ev() });
    const queued = await h.request("GET", `/events/${post.body.id}`, { key });
    expect(queued.status).toBe(200);
    expect(queued.body).toEqual({ id: post.body.id, status: "queued" });
    expect((await h.request("GET", `/events/${post.body.id}`, { key: other })).status).toBe(404);
    // The worker starts only now, and stores the event through its real receive path.
    const worker = startIngestWorker(h.c, { receivers: 1 });
    try {
      await h.eventually(async () => (await h.request("GET", `/events/${post.body.id}`, { key })).body.status === "pending", 10_000);
    } finally {
      await worker.stop();
    }
    expect((await h.request("GET", `/events/${post.body.id}`, { key })).body).toMatchObject({ id: post.body.id, status: "pending" });
  });
});

describe("when a dependency is down", () => {
  test("SQS unreachable: 503 with Retry-After, never a 202", async () => {
    const h = await startHarness({ worker: false, env: { SQS_ENDPOINT: "http://127.0.0.1:9", SQS_QUEUE_URL: "http://127.0.0.1:9/000000000000/missing" } });
    try {
      const key = await h.key("sqs-down");
      const res = await h.request("POST", "/events", { key, body: ev() });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(res.body.error.code).toBe("service_unavailable");
      const ready = await h.request("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body.error.message).toContain("sqs");
    } finally {
      await h.close();
    }
  });

  test("Redis unreachable: ingest keeps working and the limit is counted per process", async () => {
    const h = await startHarness({ env: { REDIS_URL: "redis://127.0.0.1:9" } });
    try {
      const created = await createApiKey(h.c.db.prisma, { tenantId: "redis-down", name: "k", scopes: ["events:write"], rateLimit: 2 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await h.request("POST", "/events", { key: created.secret, body: ev() })).status);
      expect(statuses).toEqual([202, 202, 429]);
      const idem = await h.request("POST", "/events", { key: (await h.key("redis-down-2")), body: ev(), headers: { "Idempotency-Key": "x1" } });
      expect(idem.status).toBe(202);
    } finally {
      await h.close();
    }
  });
});
