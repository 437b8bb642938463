import { createHash } from "node:crypto";
import { bodyHash, canonicalJson, checkEnvelope, depthOf, envelopeHash, parseIdempotencyKey, scanJson } from "../../src/domain/envelope";
import { isoString } from "../../src/domain/clock";
import { createLogger, isoTime, requestLogWriter, type RequestLogLine } from "../../src/observability/logger";
import { EVENT_ID_PATTERN, hashApiKey, idempotentEventId, newEventId } from "../../src/domain/ids";
import { decodeQueuedMessage, packQueuedEvents, packingOverhead } from "../../src/domain/queued-event";
import { splitSqlStatements } from "../../src/store/migrate/split-sql";
import { loadConfig } from "../../src/config";

describe("ids", () => {
  test("event ids are evt_ + ULID, time-ordered", () => {
    const a = newEventId(1_000);
    const b = newEventId(2_000);
    expect(a).toMatch(EVENT_ID_PATTERN);
    expect(a < b).toBe(true);
  });
  test("idempotent ids depend on tenant and key only", () => {
    expect(idempotentEventId("t", "k")).toBe(idempotentEventId("t", "k"));
    expect(idempotentEventId("t", "k")).not.toBe(idempotentEventId("u", "k"));
    expect(idempotentEventId("t", "k")).not.toBe(idempotentEventId("t", "k2"));
    // The separator keeps ("ab","c") and ("a","bc") apart.
    expect(idempotentEventId("ab", "c")).not.toBe(idempotentEventId("a", "bc"));
    expect(idempotentEventId("t", "k")).toMatch(EVENT_ID_PATTERN);
  });
  test("API key hashes are sha256 hex", () => {
    expect(hashApiKey("trg_x")).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("envelope", () => {
  test("hash ignores key order", () => {
    const a = checkEnvelope({ type: "a", payload: { x: 1, y: [1, { b: 2, a: 1 }] } });
    const b = checkEnvelope({ payload: { y: [1, { a: 1, b: 2 }], x: 1 }, type: "a" });
    if (!a.ok || !b.ok) throw new Error("invalid");
    expect(envelopeHash(a.value)).toBe(envelopeHash(b.value));
    expect(canonicalJson({ b: 1, a: [2, null] })).toBe('{"a":[2,null],"b":1}');
  });
  test("body_hash: the canonical hash with an Idempotency-Key, the raw bytes' sha256 without one", () => {
    const r = checkEnvelope({ type: "a", payload: { y: 1, x: 2 } });
    if (!r.ok) throw new Error("invalid");
    const raw = Buffer.from('{ "type": "a", "payload": {"y":1,"x":2} }');
    expect(bodyHash(r.value, null, raw)).toBe(createHash("sha256").update(raw).digest("hex"));
    // A replay is compared with this one: key order and spacing of the request must not matter.
    expect(bodyHash(r.value, "k", raw)).toBe(envelopeHash(r.value));
    // A batch item without a key has no bytes of its own.
    expect(bodyHash(r.value, null)).toBe(envelopeHash(r.value));
  });
  test("one walk finds depth and unstorable text in values and keys", () => {
    expect(scanJson({ a: [1, "x"] })).toEqual({ depth: 2, storable: true });
    expect(scanJson({ a: ["\u0000"] }).storable).toBe(false);
    expect(scanJson(JSON.parse('{"\\ud800":1}')).storable).toBe(false);
    expect(scanJson("\udc00")).toEqual({ depth: 0, storable: false });
    expect(scanJson([[[]], {}])).toEqual({ depth: 3, storable: true });
  });
  test("depth is computed without recursion", () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(depthOf(v)).toBeGreaterThan(32);
    expect(depthOf({ a: { b: 1 } })).toBe(2);
  });
  test("non-objects are rejected with a path", () => {
    const r = checkEnvelope([1, 2], 3);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.details[0]).toMatchObject({ index: 3 });
  });
  test("idempotency keys: printable ASCII, 1-255", () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
    expect(parseIdempotencyKey("abc-123")).toBe("abc-123");
    expect(() => parseIdempotencyKey("")).toThrow();
    expect(() => parseIdempotencyKey("a b")).toThrow();
    expect(() => parseIdempotencyKey("k".repeat(256))).toThrow();
  });
});

describe("queued event codec", () => {
  test("undecodable messages hold no events and one invalid part (left for the DLQ)", () => {
    for (const body of ["not json", '{"v":2}', undefined, "[]", "null", "42"]) {
      expect(decodeQueuedMessage(body)).toEqual({ events: [], invalid: 1 });
    }
  });
});

describe("SQL splitter", () => {
  test("splits on semicolons outside quotes, dollar quotes and comments", () => {
    const sql = `-- a comment; with semicolon
CREATE TABLE "a;b" (x text DEFAULT 'it''s; fine');
/* block; comment */
CREATE FUNCTION f() RETURNS void AS $body$ BEGIN PERFORM 1; END $body$ LANGUAGE plpgsql;
SELECT 1`;
    const parts = splitSqlStatements(sql);
    expect(parts).toHaveLength(3);
    expect(parts[0]).toContain(`'it''s; fine'`);
    expect(parts[1]).toContain("PERFORM 1; END");
    expect(parts[2]).toBe("SELECT 1");
  });
});

describe("config", () => {
  test("defaults run the embedded setup", () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBeUndefined();
    expect(c.port).toBe(3000);
    expect(c.host).toBe("127.0.0.1");
    expect(c.limits.maxEventBytes).toBe(262_144);
    expect(c.limits.idempotencyClaimsPerTenant).toBe(100_000);
    expect(c.limits.idempotencyClaimsTotal).toBe(500_000);
    expect(loadConfig({ IDEMPOTENCY_CLAIMS_TOTAL: "7" }).limits.idempotencyClaimsTotal).toBe(7);
    expect(Object.isFrozen(c.sqs)).toBe(true);
  });
  test("bad values name the variable", () => {
    expect(() => loadConfig({ PORT: "abc", DATABASE_URL: "mysql://x" })).toThrow(/PORT.*DATABASE_URL|DATABASE_URL.*PORT/);
  });
});

describe("storable text", () => {
  test("NUL characters and unpaired surrogates are refused anywhere in the payload", () => {
    expect(checkEnvelope({ type: "a", payload: { s: "fine ✓ 😀" } }).ok).toBe(true);
    expect(checkEnvelope({ type: "a", payload: { s: "nul\u0000" } }).ok).toBe(false);
    expect(checkEnvelope({ type: "a", payload: { ["k\u0000"]: 1 } }).ok).toBe(false);
    expect(checkEnvelope({ type: "a", payload: ["\ud800"] }).ok).toBe(false);
    expect(checkEnvelope({ type: "a", payload: 1, source: "s\u0000" }).ok).toBe(false);
  });
  test("occurred_at must be a timestamp Postgres can store", () => {
    expect(checkEnvelope({ type: "a", payload: 1, occurred_at: "0000-01-01T00:00:00Z" }).ok).toBe(false);
    expect(checkEnvelope({ type: "a", payload: 1, occurred_at: "2026-11-27T08:00:00Z" }).ok).toBe(true);
  });
});

describe("occurred_at", () => {
  test("is normalised to ISO 8601 UTC", () => {
    const r = checkEnvelope({ type: "a", payload: 1, occurred_at: "2026-11-27T09:00:00+02:00" });
    expect(r.ok && r.value.occurred_at).toBe("2026-11-27T07:00:00.000Z");
  });
});

describe("queued event codec round trip", () => {
  const base = {
    v: 1 as const,
    id: "evt_01M8E22G718Q33NJ4V84DBMMZ7",
    tenant_id: "t",
    type: "a",
    payload: { x: [1, null] },
    source: null,
    tags: ["x"],
    occurred_at: "2026-11-27T07:00:00.000Z",
    idempotency_key: null,
    body_hash: "a".repeat(64),
    received_at: "2026-11-27T07:00:01.000Z",
  };
  test("an encoded event decodes to itself", () => {
    expect(decodeQueuedMessage(JSON.stringify(base))).toEqual({ events: [base], invalid: 0 });
  });
  test("each malformed field is refused", () => {
    for (const bad of [{ v: 2 }, { id: 5 }, { tags: [1] }, { tags: "x" }, { body_hash: "zz" }, { received_at: "yesterday" }, { occurred_at: 7 }, { source: 1 }, { payload: undefined }]) {
      expect(decodeQueuedMessage(JSON.stringify({ ...base, ...bad }))).toEqual({ events: [], invalid: 1 });
    }
  });
  test("a packed message decodes to its events in order; one event stays a plain object", () => {
    const second = { ...base, id: "evt_01M8E22G718Q33NJ4V84DBMMZ8" };
    const one = packQueuedEvents([JSON.stringify(base)]);
    expect(one).toBe(JSON.stringify(base));
    const two = packQueuedEvents([JSON.stringify(base), JSON.stringify(second)]);
    expect(Buffer.byteLength(two)).toBe(Buffer.byteLength(JSON.stringify(base)) * 2 + packingOverhead(2));
    expect(decodeQueuedMessage(two)).toEqual({ events: [base, second], invalid: 0 });
  });
  test("a packed message with a bad part keeps the good parts and counts the bad", () => {
    expect(decodeQueuedMessage(JSON.stringify([base, { ...base, id: 5 }, "x"]))).toEqual({ events: [base], invalid: 2 });
  });
});

describe("log timestamps", () => {
  afterEach(() => jest.useRealTimers());
  test("isoTime writes what pino's isoTime writes, also across a second's edge", () => {
    jest.useFakeTimers();
    for (const t of [Date.UTC(2026, 11, 3, 10, 0, 0, 0), Date.UTC(2026, 11, 3, 10, 0, 0, 7), Date.UTC(2026, 11, 3, 10, 0, 0, 42), Date.UTC(2026, 11, 3, 10, 0, 0, 999), Date.UTC(2026, 11, 3, 10, 0, 1, 0), Date.UTC(2027, 0, 1, 0, 0, 0, 5)]) {
      jest.setSystemTime(t);
      expect(isoTime()).toBe(`,"time":"${new Date(t).toISOString()}"`);
    }
  });
});

describe("isoString", () => {
  test("is Date's toISOString for any time, however the calls hop between seconds", () => {
    const times = [Date.UTC(2026, 11, 3, 10, 0, 0, 0), Date.UTC(2026, 11, 3, 10, 0, 0, 9), Date.UTC(2026, 11, 3, 10, 0, 0, 99), Date.UTC(2026, 11, 3, 9, 59, 59, 999), Date.UTC(2026, 11, 3, 10, 0, 0, 100), 0, 999, 1000, 253402300799999, 253402300800000, 8.64e15, -1, -1500, 1.5];
    for (const t of [...times, ...times.reverse()]) expect(isoString(t)).toBe(new Date(t).toISOString());
  });
});

describe("request log line", () => {
  afterEach(() => jest.useRealTimers());
  const lines: RequestLogLine[] = [
    { requestId: "client-req.42:a", method: "POST", route: "/events", path: "/events", status: 202, ms: 1.234, tenant: "acme", keyId: "k_1" },
    { requestId: "0b9c8f3e-3b0e-4c49-9d43-0d1c4c5b1a2e", method: "GET", route: "unmatched", path: '/a"b\\c/\u00e9/\n/\u0001/x'.repeat(3), status: 404, ms: 0 },
    { requestId: "r", method: "DELETE", route: "/subscriptions/:name", path: "/subscriptions/%F0%9F%98%80", status: 500, ms: 12.5, tenant: 'ten"ant' },
  ];
  test("is the line pino writes for the same fields, at the logger's level", () => {
    jest.useFakeTimers();
    jest.setSystemTime(Date.UTC(2026, 11, 3, 10, 0, 0, 42));
    const ours: string[] = [];
    const theirs: string[] = [];
    const write = requestLogWriter(createLogger("info", { write: (l: string) => void ours.push(l) }));
    const pinoLogger = createLogger("info", { write: (l: string) => void theirs.push(l) });
    for (const l of lines) {
      write(l);
      pinoLogger.info(l, "request");
    }
    expect(ours).toEqual(theirs);
    expect(ours.map((l) => JSON.parse(l))).toEqual(lines.map((l) => expect.objectContaining({ ...l, msg: "request", level: 30, service: "triggers" })));
    const quiet: string[] = [];
    const atWarn = createLogger("warn", { write: (l: string) => void quiet.push(l) });
    requestLogWriter(atWarn)(lines[0]!);
    atWarn.level = "info";
    requestLogWriter(atWarn)(lines[0]!);
    expect(quiet).toHaveLength(1);
  });
});
