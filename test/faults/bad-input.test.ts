/**
 * 10 000 generated malformed requests against the real API process: broken JSON, wrong types,
 * huge and deep bodies, odd encodings, bad headers and paths. None may answer >= 500, none may
 * store or enqueue anything, and the API must still serve afterwards.
 */
import { connect } from "node:net";
import { queryFingerprint } from "../../src/api/cursor";
import { FaultEnv, post, sleep } from "./fault-env";
import { deadline } from "../helpers/deadlines";

jest.setTimeout(deadline(180_000));

/** A small deterministic PRNG so a failure can be replayed with the same seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

interface BadRequest {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer | string;
}

function generate(count: number, key: string, seed: number): BadRequest[] {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const json = { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
  const valid = JSON.stringify({ type: "order.created", payload: { n: 1, s: "héllo" }, tags: ["a"] });
  const deep = (n: number, open: string, close: string) => open.repeat(n) + "1" + close.repeat(n);
  const generators: Array<() => BadRequest> = [
    // Broken JSON: a valid body cut short or with a byte flipped.
    () => ({ kind: "truncated", method: "POST", path: "/events", headers: json, body: valid.slice(0, 1 + Math.floor(rand() * (valid.length - 2))) }),
    () => {
      // A flipped byte that leaves the JSON valid is not malformed input: flip until it is broken.
      for (;;) {
        const i = Math.floor(rand() * valid.length);
        const body = valid.slice(0, i) + pick(["{", "}", '"', ",", ":", "\\", "]"]) + valid.slice(i + 1);
        try {
          JSON.parse(body);
        } catch {
          return { kind: "flipped", method: "POST", path: "/events", headers: json, body };
        }
      }
    },
    () => ({ kind: "random-bytes", method: "POST", path: "/events", headers: json, body: Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))) }),
    // Wrong types and shapes.
    () => ({
      kind: "wrong-types",
      method: "POST",
      path: "/events",
      headers: json,
      body: JSON.stringify(
        pick<unknown>([
          { type: 42, payload: {} },
          { payload: { a: 1 } },
          { type: "a" },
          { type: "a", payload: {}, tags: "x" },
          { type: "a", payload: {}, tags: [1, 2] },
          { type: "a", payload: {}, occurred_at: 12 },
          { type: "a", payload: {}, source: { x: 1 } },
          { type: "", payload: {} },
          { type: "a b", payload: {} },
          { type: "a", payload: {}, unknown_field: true },
          [{ type: "a", payload: {} }],
          null,
          "string",
          12345,
          true,
        ]),
      ),
    }),
    () => ({ kind: "batch-wrong", method: "POST", path: "/events/batch", headers: json, body: JSON.stringify(pick<unknown>([{ events: "x" }, { events: [] }, { events: [{ type: "a" }] }, { events: Array.from({ length: 101 }, () => ({ type: "a", payload: 1 })) }, {}])) }),
    // Deep nesting, in and out of the payload.
    () => ({ kind: "deep", method: "POST", path: "/events", headers: json, body: `{"type":"a","payload":${deep(33 + Math.floor(rand() * 5000), "[", "]")}}` }),
    () => ({ kind: "very-deep", method: "POST", path: "/events", headers: json, body: deep(20_000 + Math.floor(rand() * 100_000), "[", "]") }),
    () => ({ kind: "deep-objects", method: "POST", path: "/events", headers: json, body: `{"type":"a","payload":${deep(40 + Math.floor(rand() * 2000), '{"a":', "}")}}` }),
    // Text Postgres cannot store, prototype keys.
    () => ({ kind: "nul", method: "POST", path: "/events", headers: json, body: '{"type":"a","payload":{"s":"x\\u0000y"}}' }),
    () => ({ kind: "lone-surrogate", method: "POST", path: "/events", headers: json, body: '{"type":"a","payload":{"s":"\\ud800"}}' }),
    () => ({ kind: "proto", method: "POST", path: "/events", headers: json, body: pick(['{"type":"a","payload":{"__proto__":{"x":1}}}', '{"__proto__":{"type":"a"},"payload":1}', '{"type":"a","payload":{"constructor":{"prototype":{"x":1}}}}']) }),
    () => ({ kind: "bad-date", method: "POST", path: "/events", headers: json, body: JSON.stringify({ type: "a", payload: 1, occurred_at: pick(["0000-01-01T00:00:00Z", "2026-13-45", "yesterday", "+275760-09-13T00:00:00Z"]) }) }),
    // Encodings and media types.
    () => ({ kind: "utf16", method: "POST", path: "/events", headers: { ...json, "Content-Type": "application/json; charset=utf-16" }, body: Buffer.from(valid, "utf16le") }),
    () => ({ kind: "bom-utf16", method: "POST", path: "/events", headers: json, body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(valid, "utf16le")]) }),
    () => ({ kind: "latin1", method: "POST", path: "/events", headers: { ...json, "Content-Type": "application/json; charset=latin1" }, body: Buffer.from(valid, "latin1") }),
    () => ({ kind: "invalid-utf8", method: "POST", path: "/events", headers: json, body: Buffer.concat([Buffer.from('{"type":"a","payload":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]) }),
    () => ({ kind: "content-type", method: "POST", path: "/events", headers: { ...json, "Content-Type": pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]) }, body: valid }),
    () => ({ kind: "no-content-type", method: "POST", path: "/events", headers: { Authorization: `Bearer ${key}` }, body: valid }),
    () => ({ kind: "gzip-claimed", method: "POST", path: "/events", headers: { ...json, "Content-Encoding": "gzip" }, body: valid }),
    () => ({ kind: "empty", method: "POST", path: "/events", headers: json, body: "" }),
    // Headers.
    () => ({ kind: "auth", method: "POST", path: "/events", headers: { "Content-Type": "application/json", Authorization: pick(["Bearer", "Basic dXNlcjpwYXNz", `Bearer ${"x".repeat(5000)}`, "Bearer trg_not-a-real-key-000000000", `Token ${key}`, "Bearer a b c"]) }, body: valid }),
    () => ({ kind: "idempotency-key", method: "POST", path: "/events", headers: { ...json, "Idempotency-Key": pick(["k".repeat(256), "has space", "tab\there"]) }, body: valid }),
    // Paths and queries.
    () => ({ kind: "path", method: pick(["GET", "POST", "DELETE"]), path: pick(["/events/%E0%A4%A", "/events/%", "/events/evt_%00", "/events/../../etc/passwd", `/events/${"a".repeat(3000)}`, "/events/evt_ZZZ/ack", "/inbox/%ZZ"]), headers: json }),
    () => ({ kind: "query", method: "GET", path: `/inbox?${pick(["limit=abc", "limit=0", "limit=100000", "visibility_timeout=-1", "since=garbage", "until=2026-99-99", "mode=peek&cursor=%%%", "mode=peek&cursor=eyJ4IjoxfQ", "limit=1&limit=2", "mode=nope", "status=weird&mode=peek", "tag=" + "t".repeat(1000)])}`, headers: json }),
    // Query values, cursors and lease ids that pass a loose check but that Postgres would refuse.
    () => ({ kind: "query-pg", method: pick(["GET", "HEAD"]), path: `/inbox?${pick(["type=a%00b", "source=%00", "tag=x&tag=a%00", "since=0000-01-01T00:00:00Z", "until=%2B010000-01-01T00:00:00Z", "since=-000001-06-01T00:00:00Z", "mode=peek&until=0000-12-31T23:59:59Z", "a&".repeat(6000), "tag=t&".repeat(100)])}`, headers: json }),
    () => {
      const r = pick(["+275760-09-13T00:00:00.000Z", "-000001-01-01T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "+010000-01-01T00:00:00.000Z"]);
      const cursor = Buffer.from(JSON.stringify({ v: 1, r, i: "evt_01M8E22G718Q33NJ4V84DBMMZ7", f: queryFingerprint([null, null, null, null, null, null]) })).toString("base64url");
      return { kind: "cursor-date", method: "GET", path: `/inbox?mode=peek&cursor=${cursor}`, headers: json };
    },
    () => {
      const u = "5f0c2f0e-8f6b-4c1e-9a54-6c1f0b6c2d11";
      const lease = pick([`{${u}}`, `(${u})`, `[${u}]`, u.replace(/-/g, ":"), u.replace(/-/g, ""), `urn:uuid:${u}`, `${u}\u0000`]);
      const id = "evt_01M8E22G718Q33NJ4V84DBMMZ7";
      return pick<BadRequest>([
        { kind: "lease-id", method: "POST", path: `/events/${id}/ack`, headers: json, body: JSON.stringify({ lease_id: lease }) },
        { kind: "lease-id", method: "DELETE", path: `/events/${id}/ack?lease_id=${encodeURIComponent(lease)}`, headers: json },
        { kind: "lease-id", method: "POST", path: `/events/${id}/nack`, headers: json, body: JSON.stringify({ lease_id: lease }) },
        { kind: "lease-id", method: "POST", path: `/events/${id}/extend`, headers: json, body: JSON.stringify({ lease_id: lease, visibility_timeout: 5 }) },
      ]);
    },
    () => ({ kind: "ack-body", method: "POST", path: pick(["/events/ack", "/events/evt_01M8E22G718Q33NJ4V84DBMMZ7/nack", "/events/evt_01M8E22G718Q33NJ4V84DBMMZ7/extend", "/events/evt_01M8E22G718Q33NJ4V84DBMMZ7/ack"]), headers: json, body: pick(['{"ids":"x"}', '{"ids":[1,2]}', '{"delay_seconds":-5}', '{"visibility_timeout":"abc"}', '{"lease_id":"nope"}', "[]", "{"]) }),
    // Subscriptions: bodies, filter values no event field could hold (NUL, lone surrogates, patterns, lengths), names and paths.
    () => {
      const value = pick<unknown>(["a\u0000b", "\u0000", "\ud800", "x".repeat(300), "has space", ".dot", "", 1, null, { a: 1 }, ["x"]]);
      const field = pick(["types", "sources", "tags", "colours"]);
      const filter = pick<unknown>([{ [field]: [value] }, { [field]: value }, { [field]: Array.from({ length: 101 }, (_, i) => `v${i}`) }, { [field]: ["a", "a"] }, [], "x", 1]);
      return pick<BadRequest>([
        { kind: "subscription-create", method: "POST", path: "/subscriptions", headers: json, body: JSON.stringify({ name: pick(["fuzz", "", "UPPER", "a".repeat(65), "a\u0000b", 5]), filter }) },
        { kind: "subscription-create", method: "POST", path: "/subscriptions", headers: json, body: JSON.stringify({ name: "fuzz", filter }) },
        { kind: "subscription-patch", method: "PATCH", path: `/subscriptions/${pick(["default", "fuzz", "nope"])}`, headers: json, body: JSON.stringify(pick<unknown>([{ filter }, {}, { filter, name: "x" }, null])) },
      ]);
    },
    () => ({ kind: "subscription-body", method: pick(["POST", "PATCH"]), path: pick(["/subscriptions", "/subscriptions/fuzz"]), headers: json, body: pick(["{", '{"name":', "[]", "null", '"x"', '{"name":"a","filter":{"types":["a\\u0000"]}}', '{"filter":{"sources":["\\ud800"]}}', '{"filter":{"tags":["a\\u0000"]}}', '{"filter":{"__proto__":{"types":["a"]}}}']) }),
    () => ({ kind: "subscription-path", method: pick(["GET", "PATCH", "DELETE"]), path: pick(["/subscriptions/%00", "/subscriptions/a%00b", "/subscriptions/%E0%A4%A", "/subscriptions/%", `/subscriptions/${"a".repeat(3000)}`, "/subscriptions/..%2F..", "/subscriptions/UPPER", "/subscriptions/fuzz?x=%00", "/subscriptions?limit=%00"]), headers: json, ...(rand() < 0.5 ? { body: '{"filter":null}' } : {}) }),
  ];
  const out: BadRequest[] = [];
  for (let i = 0; i < count; i++) out.push(generators[i % generators.length]!());
  // A few bodies over the size limit: with and without a Content-Length.
  for (let i = 0; i < 10; i++) out[i * 97] = { kind: "huge", method: "POST", path: "/events", headers: json, body: `{"type":"a","payload":"${"x".repeat(300 * 1024 + i)}"}` };
  return out;
}

/** Sends bytes no HTTP client would: lying Content-Length, broken chunking, garbage request lines. */
function rawRequest(port: number, text: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const done = () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve(m ? Number(m[1]) : 0);
    };
    socket.setTimeout(3000, () => socket.destroy());
    socket.on("data", (d) => {
      data += d.toString("latin1");
      if (/^HTTP\/1\.1 \d{3}/.test(data)) socket.destroy();
    });
    socket.on("close", done);
    socket.on("error", () => undefined);
    socket.write(text, "latin1");
  });
}

describe("bad input", () => {
  const env = new FaultEnv();
  beforeAll(() => env.start());
  afterAll(() => env.close());

  test("10 000 malformed requests: 0 responses >= 500, 0 rows stored, the API still serves", async () => {
    const api = await env.spawn("api");
    const requests = generate(Number(process.env.FAULT_BAD_REQUESTS ?? 10_000), env.key, 20261127);
    const byStatus = new Map<number, number>();
    const serverErrors: string[] = [];
    const accepted: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        while (next < requests.length) {
          const r = requests[next++]!;
          let status: number;
          try {
            const body = typeof r.body === "string" ? r.body : r.body === undefined ? undefined : new Uint8Array(r.body);
            const res = await fetch(`${api.url}${r.path}`, { method: r.method, headers: r.headers, ...(body === undefined ? {} : { body }) });
            status = res.status;
            await res.arrayBuffer();
          } catch {
            status = 0; // the server closed the connection (e.g. an oversized body); not a 5xx
          }
          byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
          if (status === 202) accepted.push(r.kind);
          if (status >= 500) serverErrors.push(`${status} ${r.kind} ${r.method} ${r.path.slice(0, 80)}`);
        }
      }),
    );
    const raw = [
      `POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"type":"a"}`,
      `POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnot chunked\r\n`,
      `POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`,
      `GARBAGE\r\n\r\n`,
      `GET /inbox HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${"\u00ff".repeat(20)}\r\n\r\n`,
    ];
    for (const text of raw) {
      const status = await rawRequest(api.port, text);
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      if (status >= 500) serverErrors.push(`${status} raw ${JSON.stringify(text.slice(0, 60))}`);
    }
    process.stdout.write(`${JSON.stringify({ sent: requests.length + raw.length, byStatus: Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)) })}\n`);
    expect(serverErrors).toEqual([]);
    expect(accepted).toEqual([]);
    await sleep(500);
    expect(await env.count("SELECT count(*) AS n FROM events")).toBe(0);
    expect((await env.queue.depth()).visible).toBe(0);
    // Still serving.
    const ok = await post(`${api.url}/events`, env.key, { type: "still.alive", payload: { ok: true } });
    expect(ok.status).toBe(202);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});
