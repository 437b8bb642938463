import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES, type ErrorCode } from "../../src/errors";
import { startHarness, type Harness } from "../helpers/harness";
import { OpenApiMismatch, resolvePointer, validatorAt } from "../helpers/openapi-validator";
import { ROUTE_TABLE } from "../../src/api/route-table";

type Json = Record<string, unknown>;

/** The codes an error response schema (allOf [Error, {code enum}]) declares. */
function codesOf(schema: Json): string[] {
  const narrowed = (schema.allOf as Json[] | undefined)?.[1] as Json | undefined;
  const error = (narrowed?.properties as Json | undefined)?.error as Json | undefined;
  const code = (error?.properties as Json | undefined)?.code as Json | undefined;
  return (code?.enum as string[] | undefined) ?? [];
}

/** Every `code` the source under src/ sends as a literal: AppError subclasses, errorBody and CODE_BY_STATUS. */
function codesSentBySource(): Array<{ code: string; file: string }> {
  const found: Array<{ code: string; file: string }> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "generated" && entry.name !== "client") walk(full);
      } else if (entry.name.endsWith(".ts")) {
        const text = readFileSync(full, "utf8");
        const patterns = [
          /\bsuper\(\s*\d{3},\s*"([a-z][a-z0-9_]*)"/g, // class XError extends AppError { super(400, "code", …) }
          /new AppError\(\s*\d{3},\s*"([a-z][a-z0-9_]*)"/g,
          /new (?:BadRequest|Conflict)Error\(\s*"([a-z][a-z0-9_]*)"/g,
          /\bsuper\(\s*"([a-z][a-z0-9_]*)",/g, // extends BadRequestError / ConflictError
          /errorBody\(\s*"([a-z][a-z0-9_]*)"/g,
          /\bcode:\s*"([a-z][a-z0-9_]*)"/g, // a body literal that bypasses errorBody
          /^\s*\d{3}: "([a-z][a-z0-9_]*)",$/gm, // CODE_BY_STATUS rows
        ];
        for (const re of patterns) for (const m of text.matchAll(re)) found.push({ code: m[1]!, file: full });
      }
    }
  };
  walk(join(__dirname, "../../src"));
  return found;
}
const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

/** Every `$ref` string anywhere in a JSON value, with where it was found. */
function refsOf(node: unknown, at = "#"): Array<{ ref: string; at: string }> {
  if (Array.isArray(node)) return node.flatMap((v, i) => refsOf(v, `${at}/${i}`));
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) => (k === "$ref" && typeof v === "string" ? [{ ref: v, at }] : refsOf(v, `${at}/${k}`)));
}

describe("OpenAPI document", () => {
  let h: Harness;
  let doc: Json;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    const res = await h.request("GET", "/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    doc = res.body as Json;
  });
  afterAll(() => h.close());

  const operations = () =>
    Object.entries(doc.paths as Json).flatMap(([path, item]) =>
      Object.entries(item as Json)
        .filter(([m]) => METHODS.includes(m))
        .map(([method, op]) => ({ path, method, op: op as Json })),
    );

  test("is served without a key and has the shape of an OpenAPI 3.1 document", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toEqual(expect.objectContaining({ title: expect.any(String), version: expect.any(String) }));
    expect(isObject(doc.paths)).toBe(true);
    for (const path of Object.keys(doc.paths as Json)) expect(path).toMatch(/^\//);
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(14);
    const ids = new Set<string>();
    for (const { path, method, op } of ops) {
      const where = `${method.toUpperCase()} ${path}`;
      expect([where, typeof op.operationId]).toEqual([where, "string"]);
      expect([where, ids.has(op.operationId as string)]).toEqual([where, false]);
      ids.add(op.operationId as string);
      const responses = op.responses as Json;
      expect([where, isObject(responses) && Object.keys(responses).length > 0]).toEqual([where, true]);
      for (const [status, response] of Object.entries(responses)) {
        expect([where, status]).toEqual([where, expect.stringMatching(/^([1-5]\d\d|[1-5]XX|default)$/)]);
        const r = isObject(response) && typeof response.$ref === "string" ? resolvePointer(doc, response.$ref) : response;
        expect([where, status, typeof (r as Json).description]).toEqual([where, status, "string"]);
      }
      // Every path template parameter is declared as a required path parameter.
      const declared = ((op.parameters ?? []) as Json[]).map((p) => (typeof p.$ref === "string" ? (resolvePointer(doc, p.$ref) as Json) : p));
      for (const name of path.match(/\{[^}]+\}/g) ?? []) {
        const param = declared.find((p) => p.in === "path" && `{${String(p.name)}}` === name);
        expect([where, name, param?.required]).toEqual([where, name, true]);
      }
    }
  });

  test("every $ref resolves inside the document", () => {
    const refs = refsOf(doc);
    expect(refs.length).toBeGreaterThan(50);
    const broken = refs.filter(({ ref }) => resolvePointer(doc, ref) === undefined);
    expect(broken).toEqual([]);
  });

  test("declares the bearer scheme, the shared Error schema, and every documented header", () => {
    const components = doc.components as Json;
    expect(components.securitySchemes).toEqual({ bearerAuth: expect.objectContaining({ type: "http", scheme: "bearer" }) });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect((components.schemas as Json).Error).toBeDefined();
    expect(Object.keys(components.headers as Json)).toEqual(
      expect.arrayContaining(["X-Request-Id", "Retry-After", "Idempotent-Replayed", "RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]),
    );
    const post = (doc.paths as Json)["/events"] as Json;
    const params = ((post.post as Json).parameters as Json[]).map((p) => p.name ?? p.$ref);
    expect(params).toContain("Idempotency-Key");
    const accepted = ((post.post as Json).responses as Json)["202"] as Json;
    expect(Object.keys(accepted.headers as Json)).toEqual(expect.arrayContaining(["Location", "Idempotent-Replayed", "X-Request-Id", "RateLimit"]));
    // Public operations opt out of the key; every other one inherits it.
    for (const { path, method, op } of operations()) {
      const isPublic = ["/healthz", "/readyz", "/metrics", "/openapi.json"].includes(path) || method === "options";
      expect([method, path, op.security]).toEqual([method, path, isPublic ? [] : undefined]);
      // Every error status is answered with the shared Error schema.
      for (const [status, response] of Object.entries(op.responses as Json)) {
        if (Number(status) < 400 || method === "head") continue;
        const r = (typeof (response as Json).$ref === "string" ? resolvePointer(doc, (response as Json).$ref as string) : response) as Json;
        // …narrowed to the codes this response may carry, each a code of that status.
        const schema = ((r.content as Json)["application/json"] as Json).schema as Json;
        expect([method, path, status, (schema.allOf as Json[])[0]]).toEqual([method, path, status, { $ref: "#/components/schemas/Error" }]);
        const codes = codesOf(schema);
        expect([method, path, status, codes.length > 0]).toEqual([method, path, status, true]);
        for (const code of codes) expect([method, path, status, code, ERROR_CODES[code as ErrorCode]]).toEqual([method, path, status, code, Number(status)]);
      }
    }
    // GET /inbox's query is one of two modes, each a closed parameter set (one exploded object parameter).
    const inbox = ((doc.paths as Json)["/inbox"] as Json).get as Json;
    const query = (inbox.parameters as Json[]).filter((p) => p.in === "query");
    expect(query.map((p) => [p.name, p.style, p.explode])).toEqual([["query", "form", true]]);
    const modes = ((query[0]!.schema as Json).anyOf as Json[]).map((m) => resolvePointer(doc, m.$ref as string) as Json);
    const names = (m: Json) => Object.keys(m.properties as Json).sort();
    expect(modes.map(names)).toEqual([
      ["format", "limit", "mode", "since", "source", "subscription", "tag", "type", "until", "visibility_timeout", "wait_seconds"],
      ["cursor", "format", "limit", "mode", "since", "source", "status", "subscription", "tag", "type", "until"],
    ]);
    expect(modes.map((m) => m.additionalProperties)).toEqual([false, false]);
  });

  test("every route registered in the Koa routers is documented, and every documented operation is routed", async () => {
    // Every operation of the route table (the only place a route is registered), with the HEAD of each GET.
    const registered = ROUTE_TABLE.flatMap((op) => [`${op.method} ${op.path}`, ...(op.method === "GET" ? [`HEAD ${op.path}`] : [])]);
    const documented = operations()
      .filter(({ method }) => method !== "options")
      .map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    expect(registered.length).toBeGreaterThanOrEqual(14);
    expect(registered.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((d) => !registered.includes(d))).toEqual([]);

    // And the running app answers each of them: public ones without a key, the others 401 (a route
    // that does not exist would be the router's 404).
    const sampleId = "evt_01J00000000000000000000000";
    for (const op of operations().filter((o) => o.method !== "options")) {
      const path = op.path.replace("{id}", sampleId).replace("{name}", "default").replace("{type}", "order.created");
      const res = await h.request(op.method.toUpperCase(), path);
      const isPublic = op.op.security !== undefined;
      if (isPublic) expect([op.path, res.status]).toEqual([op.path, 200]);
      else expect([op.method, op.path, res.status, res.headers.get("www-authenticate")]).toEqual([op.method, op.path, 401, 'Bearer realm="triggers"']);
    }
  });

  test("every path's edges are documented where the server answers them: OPTIONS, HEAD, 405, 401, 403, 400, 413, 414, 415", async () => {
    // Each answer below goes through the harness, which fails on a status, code or header the document does not declare.
    const key = await h.key("openapi-edges");
    const readOnly = await h.key("openapi-edges", ["inbox:read"]);
    const sample = (p: string) => p.replace("{id}", "evt_01J00000000000000000000000").replace("{name}", "default").replace("{type}", "order.created");
    const seen = new Set<string>();
    for (const { path, method, op } of operations()) {
      const url = sample(path);
      if (!seen.has(path)) {
        seen.add(path);
        const options = await h.request("OPTIONS", url);
        expect([path, options.status, options.headers.get("allow")]).toEqual([path, 204, expect.stringContaining("OPTIONS")]);
        // A method the path does not list (PUT, or PATCH where PUT is listed).
        const unlisted = ["PUT", "PATCH"].find((m) => !options.headers.get("allow")!.split(", ").includes(m))!;
        const put = await h.request(unlisted, url, { key });
        expect([path, put.status, put.body.error.code, put.headers.get("allow")]).toEqual([path, 405, "method_not_allowed", options.headers.get("allow")]);
        const long = await h.request(method === "options" ? "GET" : method.toUpperCase(), `${url}?q=${"x".repeat(5000)}`, { key });
        expect([path, long.status]).toEqual([path, 414]);
      }
      if (method === "options") continue;
      const m = method.toUpperCase();
      if (method === "head") {
        const head = await h.request("HEAD", url, { key });
        expect([path, head.status < 500, head.text]).toEqual([path, true, ""]);
        continue;
      }
      // An undeclared query parameter is refused by every operation.
      const extra = await h.request(m, `${url}?zz_undeclared=1`, { key });
      expect([m, path, extra.status, extra.body?.error?.code]).toEqual([m, path, 400, "validation_failed"]);
      if (op.security !== undefined) continue;
      expect([m, path, (await h.request(m, url)).status]).toEqual([m, path, 401]);
      // A read-only key lacks every scope but inbox:read; an operation open to any key answers it.
      if (op["x-scope"] !== "inbox:read" && op["x-scope"] !== "any") expect([m, path, (await h.request(m, url, { key: readOnly })).status]).toEqual([m, path, 403]);
      if (op.requestBody) {
        const text = await h.request(m, url, { key, raw: "{}", headers: { "Content-Type": "text/plain" } });
        expect([m, path, text.status]).toEqual([m, path, 415]);
        const big = await h.request(m, url, { key, raw: `{"x":"${"x".repeat(2_000_000)}"}`, headers: { "Content-Type": "application/json" } });
        expect([m, path, big.status]).toEqual([m, path, 413]);
      }
    }
  });

  test("the validator rejects a response that drifts from the document", async () => {
    const v = await validatorAt(h.url);
    const id = "evt_01J00000000000000000000000";
    const headers = (extra: Record<string, string> = {}) => new Headers({ "content-type": "application/json", "x-request-id": "r1", location: `/events/${id}`, ...extra });
    const body = { id, status: "accepted", received_at: new Date().toISOString() };
    expect(() => v.validate({ method: "POST", path: "/events", status: 202, headers: headers(), text: JSON.stringify(body) })).not.toThrow();
    // An extra property, a wrong enum value, an undocumented status, a missing required header, an undocumented route.
    expect(() => v.validate({ method: "POST", path: "/events", status: 202, headers: headers(), text: JSON.stringify({ ...body, extra: 1 }) })).toThrow(/POST \/events → 202[\s\S]*additional properties/);
    expect(() => v.validate({ method: "POST", path: "/events", status: 202, headers: headers(), text: JSON.stringify({ ...body, status: "queued" }) })).toThrow(OpenApiMismatch);
    expect(() => v.validate({ method: "POST", path: "/events", status: 418, headers: headers(), text: "{}" })).toThrow(/status 418 is not documented/);
    expect(() => v.validate({ method: "POST", path: "/events", status: 202, headers: new Headers({ "content-type": "application/json" }), text: JSON.stringify(body) })).toThrow(/X-Request-Id is required/);
    expect(() => v.validate({ method: "POST", path: "/events", status: 429, headers: headers(), text: JSON.stringify({ error: { code: "rate_limited", message: "m", details: [] } }) })).toThrow(/Retry-After is required/);
    expect(() => v.validate({ method: "GET", path: "/nope", status: 200, headers: headers(), text: "{}" })).toThrow(/no documented operation/);
    // GET /events/{id} accepts the stored event and the queued receipt, and nothing in between.
    expect(() => v.validate({ method: "GET", path: `/events/${id}`, status: 200, headers: headers(), text: JSON.stringify({ id, status: "queued" }) })).not.toThrow();
    expect(() => v.validate({ method: "GET", path: `/events/${id}`, status: 200, headers: headers(), text: JSON.stringify({ id, status: "accepted" }) })).toThrow(OpenApiMismatch);
  });

  test("every error code the server sends is declared, with its status, by the responses that may carry it", () => {
    // The source's literals are all in the table (AppError's type makes the rest compile-checked)…
    const sent = codesSentBySource();
    expect(sent.length).toBeGreaterThan(20);
    expect(sent.filter(({ code }) => !(code in ERROR_CODES))).toEqual([]);
    for (const code of ["method_not_allowed", "uri_too_long", "too_many_parameters", "too_many_failed_authentications", "unrepresentable_number", "event_refused_by_queue", "idempotency_key_reused"]) {
      expect([code, sent.some((s) => s.code === code)]).toEqual([code, true]);
    }
    // …and every code of the table is declared by some response of its status in the served document.
    const declared = new Map<string, Set<string>>();
    const collect = (status: string, response: Json) => {
      const r = (typeof response.$ref === "string" ? resolvePointer(doc, response.$ref) : response) as Json;
      const schema = ((r.content as Json | undefined)?.["application/json"] as Json | undefined)?.schema as Json | undefined;
      for (const code of schema ? codesOf(schema) : []) (declared.get(code) ?? declared.set(code, new Set()).get(code)!).add(status);
    };
    for (const { op } of operations()) for (const [status, response] of Object.entries(op.responses as Json)) collect(status, response as Json);
    // 405 is declared once, for every path (x-method-not-allowed).
    for (const item of Object.values(doc.paths as Json)) collect("405", (item as Json)["x-method-not-allowed"] as Json);
    const partial = JSON.stringify(((doc.components as Json).schemas as Json).PartialBatch);
    for (const code of ["service_unavailable", "enqueue_outcome_unknown", "event_refused_by_queue"]) expect(partial).toContain(`{"const":"${code}","type":"string"}`);
    for (const [code, status] of Object.entries(ERROR_CODES)) expect([code, [...(declared.get(code) ?? [])].includes(String(status))]).toEqual([code, true]);
    // The Error schema itself enumerates the whole set.
    const error = ((((doc.components as Json).schemas as Json).Error as Json).properties as Json).error as Json;
    expect(((error.properties as Json).code as Json).enum).toEqual(Object.keys(ERROR_CODES));
  });

  test("the validator rejects an error answer whose code its response does not declare", async () => {
    const v = await validatorAt(h.url);
    const headers = new Headers({ "content-type": "application/json", "x-request-id": "r1" });
    const body = (code: string) => JSON.stringify({ error: { code, message: "m", details: [] } });
    expect(() => v.validate({ method: "POST", path: "/events", status: 409, headers, text: body("idempotency_key_reused") })).not.toThrow();
    // A 409 code of another route, and a code of no route at all.
    expect(() => v.validate({ method: "POST", path: "/events", status: 409, headers, text: body("lease_expired") })).toThrow(OpenApiMismatch);
    expect(() => v.validate({ method: "POST", path: "/events", status: 409, headers, text: body("idempotency_conflict") })).toThrow(OpenApiMismatch);
    expect(() => v.validate({ method: "POST", path: "/events", status: 400, headers, text: body("not_a_code") })).toThrow(OpenApiMismatch);
    // 405 with Allow on a documented path; not on an unknown one.
    const allow = new Headers({ "content-type": "application/json", "x-request-id": "r1", allow: "GET, HEAD, OPTIONS" });
    expect(() => v.validate({ method: "PUT", path: "/inbox", status: 405, headers: allow, text: body("method_not_allowed") })).not.toThrow();
    expect(() => v.validate({ method: "PUT", path: "/nope", status: 405, headers: allow, text: body("method_not_allowed") })).toThrow(OpenApiMismatch);
  });

  /** Requests the document forbids, each of which the server must refuse (the harness fails an accepted one). */
  const forbidden = (key: string) => [
    { what: "an extra top-level batch field", method: "POST", path: "/events/batch", body: { events: [{ type: "a", payload: 1 }], extra: 1 } },
    { what: "a batch idempotency_key with a space", method: "POST", path: "/events/batch", body: { events: [{ type: "a", payload: 1, idempotency_key: "has space" }] } },
    { what: "occurred_at without seconds", method: "POST", path: "/events", body: { type: "a", payload: 1, occurred_at: "2026-01-02T03:04Z" } },
    { what: "occurred_at on a day that does not exist", method: "POST", path: "/events", body: { type: "a", payload: 1, occurred_at: "2026-02-30T00:00:00Z" } },
    { what: "occurred_at before 1900", method: "POST", path: "/events", body: { type: "a", payload: 1, occurred_at: "1899-12-31T23:59:59Z" } },
    { what: "a peek-mode parameter in lease mode", method: "GET", path: "/inbox?status=pending" },
    { what: "a lease-mode parameter in peek mode", method: "GET", path: "/inbox?mode=peek&wait_seconds=1" },
    { what: "since as a bare date", method: "GET", path: "/inbox?mode=peek&since=2026-01-02" },
    { what: "until without an offset", method: "GET", path: "/inbox?mode=peek&until=2026-01-02T03:04:05" },
    { what: "an undeclared query parameter", method: "GET", path: "/inbox?mode=peek&colour=red" },
    { what: "an id that cannot exist", method: "GET", path: "/events/evt_nope" },
    { what: "a urn: lease id", method: "POST", path: "/events/evt_01J00000000000000000000000/ack", body: { lease_id: "urn:uuid:00000000-0000-4000-8000-000000000000" } },
  ].map((r) => ({ ...r, key }));

  test("what the document forbids the server refuses, and the validator names why", async () => {
    const v = await validatorAt(h.url);
    const key = await h.key("openapi-forbidden");
    for (const r of forbidden(key)) {
      const raw = r.body === undefined ? undefined : JSON.stringify(r.body);
      const problems = v.requestProblems({ method: r.method, path: r.path, headers: raw === undefined ? {} : { "Content-Type": "application/json" }, body: raw });
      expect([r.what, problems.length > 0]).toEqual([r.what, true]);
      const res = await h.request(r.method, r.path, { key, ...(r.body === undefined ? {} : { body: r.body }) });
      expect([r.what, res.status, [400, 404].includes(res.status)]).toEqual([r.what, res.status, true]);
    }
  });

  test("what the document allows the server does not refuse", async () => {
    const v = await validatorAt(h.url);
    const key = await h.key("openapi-allowed");
    const id = "evt_01J00000000000000000000000";
    const lease = "0f8fad5b-d9cb-469f-a165-70867728950e";
    // Edge values the document allows: each bound at its limit, each optional form.
    const allowed: Array<{ what: string; method: string; path: string; body?: unknown; headers?: Record<string, string> }> = [
      { what: "a minimal event", method: "POST", path: "/events", body: { type: "a", payload: null } },
      {
        what: "every field at its limit",
        method: "POST",
        path: "/events",
        body: { type: `a${"b".repeat(127)}`, payload: { x: [1, "s", true, null] }, source: "s".repeat(256), tags: Array.from({ length: 20 }, (_, i) => `t${i}`.padEnd(64, "x")), occurred_at: "9999-12-31T23:59:59.999999999Z" },
      },
      { what: "occurred_at with a negative offset and no fraction", method: "POST", path: "/events", body: { type: "a.b:c/d-e_f", payload: 1, occurred_at: "1900-01-01T05:00:00+05:00", source: null, tags: [] } },
      { what: "an Idempotency-Key of 255 printable characters", method: "POST", path: "/events", body: { type: "a", payload: 1 }, headers: { "Idempotency-Key": "~".repeat(255) } },
      { what: "a bare-array batch with keys", method: "POST", path: "/events/batch", body: [{ type: "a", payload: 1, idempotency_key: "!".repeat(255) }, { type: "a", payload: 2, occurred_at: null }] },
      { what: "a wrapped batch of 100", method: "POST", path: "/events/batch", body: { events: Array.from({ length: 100 }, (_, i) => ({ type: "a", payload: i })) } },
      { what: "peek with every filter", method: "GET", path: `/inbox?mode=peek&limit=500&type=a&source=s&tag=x&tag=y&since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59.999%2B00:00&status=pending` },
      { what: "a lease with its bounds", method: "GET", path: "/inbox?mode=lease&limit=1&visibility_timeout=1&wait_seconds=0" },
      { what: "a batch ack by ids", method: "POST", path: "/events/ack", body: { ids: [id] } },
      { what: "an ack with an upper-case lease id", method: "POST", path: `/events/${id}/ack`, body: { lease_id: lease.toUpperCase() } },
      { what: "an ack by DELETE", method: "DELETE", path: `/events/${id}/ack?lease_id=${lease}` },
      { what: "a nack", method: "POST", path: `/events/${id}/nack`, body: { lease_id: lease, delay_seconds: 0 } },
      { what: "an extend", method: "POST", path: `/events/${id}/extend`, body: { lease_id: lease, visibility_timeout: 1 } },
    ];
    for (const r of allowed) {
      const raw = r.body === undefined ? undefined : JSON.stringify(r.body);
      const headers = { ...(raw === undefined ? {} : { "Content-Type": "application/json" }), ...r.headers };
      expect([r.what, v.requestProblems({ method: r.method, path: r.path, headers, body: raw })]).toEqual([r.what, []]);
      const res = await h.request(r.method, r.path, { key, ...(r.body === undefined ? {} : { body: r.body }), ...(r.headers ? { headers: r.headers } : {}) });
      // Allowed means not refused for its form: 404/409 about an event that does not exist are answers, not refusals.
      expect([r.what, res.status, res.body?.error?.code ?? null, [200, 202, 404, 409].includes(res.status)]).toEqual([r.what, res.status, res.body?.error?.code ?? null, true]);
    }
  });
});
