/**
 * Requests Node's HTTP parser or its timers refuse before the app sees them (an unknown method, a
 * malformed request line or header, headers past the size limit, a client too slow with its
 * headers or its body) answer the documented JSON error, with Connection: close, and the server
 * closes the connection; the API serves the next client as before. Raw sockets, since no HTTP
 * client sends these.
 */
import { connect } from "node:net";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { deadline } from "../helpers/deadlines";
import { validatorAt } from "../helpers/openapi-validator";

/** The server's deadlines here, ms: short, so the timeout cases take about a second each. */
const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 1500;

interface RawAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** The server closed the connection (within the deadline). */
  readonly closed: boolean;
  readonly ms: number;
}

onlyOn("postgres", "the answers come from Node's HTTP layer, before any store is involved").describe("errors at the HTTP edge are JSON", () => {
  let h: Harness;
  let key: string;
  let port: number;

  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } });
    key = await h.key("edge");
    port = h.api.port;
  });
  afterAll(() => h?.close());

  /** Writes `text` on a new connection and reads until the server closes it (or the deadline passes). */
  function send(text: string, waitMs = 5000): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const s = connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      let closed = false;
      const finish = () => {
        clearTimeout(timer);
        s.destroy();
        const raw = Buffer.concat(chunks).toString("latin1");
        const split = raw.indexOf("\r\n\r\n");
        const head = split === -1 ? raw : raw.slice(0, split);
        const [statusLine = "", ...lines] = head.split("\r\n");
        const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
        if (!m) return reject(new Error(`no HTTP answer (closed: ${closed}): ${JSON.stringify(raw.slice(0, 200))}`));
        const headers = new Headers();
        for (const l of lines) headers.append(l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim());
        resolve({ status: Number(m[1]), headers, body: split === -1 ? "" : raw.slice(split + 4), closed, ms: Date.now() - started });
      };
      const timer = setTimeout(finish, deadline(waitMs));
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("error", () => undefined);
      s.once("close", () => {
        closed = true;
        finish();
      });
      s.write(text, "latin1");
    });
  }

  /** The answer is the documented error with `code`, closes the connection, and matches /openapi.json for `method path`. */
  async function expectEdgeError(r: RawAnswer, status: number, code: string, method = "GET", path = "/inbox"): Promise<void> {
    expect([r.status, r.body]).toEqual([status, expect.any(String)]);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(Number(r.headers.get("content-length"))).toBe(Buffer.byteLength(r.body));
    expect(r.headers.get("connection")).toBe("close");
    expect(r.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    const parsed = JSON.parse(r.body) as { error: { code: string; message: string; details: unknown[] } };
    expect(parsed).toEqual({ error: { code, message: expect.any(String), details: [] } });
    expect(r.closed).toBe(true);
    (await validatorAt(h.url)).validate({ method, path, status: r.status, headers: r.headers, text: r.body });
  }

  /** After each refusal the API still answers a normal request. */
  afterEach(async () => {
    const res = await fetch(`${h.url}/inbox?mode=peek`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(deadline(5000)) });
    expect(res.status).toBe(200);
  });

  test("an unknown method: 400 bad_request", async () => {
    await expectEdgeError(await send("FROB /inbox HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad_request", "FROB");
  });

  test("a malformed request line, a malformed header and a doubled Content-Length: 400 bad_request", async () => {
    await expectEdgeError(await send("GARBAGE\r\n\r\n"), 400, "bad_request", "GARBAGE", "/");
    await expectEdgeError(await send("GET /inbox HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"), 400, "bad_request");
    await expectEdgeError(await send("POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"), 400, "bad_request", "POST", "/events");
  });

  test("headers past the size limit: 431 request_header_fields_too_large", async () => {
    const r = await send(`GET /inbox HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nX-Padding: ${"a".repeat(20_000)}\r\n\r\n`);
    await expectEdgeError(r, 431, "request_header_fields_too_large");
  });

  test("headers that never finish: 408 request_timeout at the headers timeout", async () => {
    const r = await send("GET /inbox HTTP/1.1\r\nHost: x\r\n");
    await expectEdgeError(r, 408, "request_timeout");
    // Node checks its timers every 500 ms (connectionsCheckingInterval).
    expect(r.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
  });

  test("a body that never finishes: 408 request_timeout at the request timeout", async () => {
    const r = await send(`POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":`);
    await expectEdgeError(r, 408, "request_timeout", "POST", "/events");
    expect(r.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    // The request the app had started reading ends quietly: no error logged, nothing stored.
    expect(h.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50)).toEqual([]);
    expect(await h.sql("SELECT 1 FROM events")).toEqual([]);
  });
});
