import type Router from "@koa/router";
import { startHarness, type Harness } from "../helpers/harness";
import { OpenApiMismatch, resolvePointer, validatorAt } from "../helpers/openapi-validator";
import { ackRoutes } from "../../src/api/routes/acks";
import { eventRoutes } from "../../src/api/routes/events";
import { healthRoutes } from "../../src/api/routes/health";
import { inboxRoutes } from "../../src/api/routes/inbox";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const METHODS = ["get", "put", "post", "delete", "patch", "options", "head", "trace"];

/** Every `$ref` string anywhere in a JSON value, with where it was found. */
function refsOf(node: unknown, at = "#"): Array<{ ref: string; at: string }> {
  if (Array.isArray(node)) return node.flatMap((v, i) => refsOf(v, `${at}/${i}`));
  if (!isObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) => (k === "$ref" && typeof v === "string" ? [{ ref: v, at }] : refsOf(v, `${at}/${k}`)));
}

/** METHOD + OpenAPI path of every route layer of a @koa/router (":id" becomes "{id}"; HEAD is implied by GET). */
function routesOf(router: Router): string[] {
  return router.stack.flatMap((layer) =>
    layer.methods.filter((m) => m !== "HEAD").map((m) => `${m} ${String(layer.path).replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`),
  );
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
    const params = ((post.post as Json).parameters as Json[]).map((p) => p.$ref);
    expect(params).toContain("#/components/parameters/Idempotency-Key");
    const accepted = ((post.post as Json).responses as Json)["202"] as Json;
    expect(Object.keys(accepted.headers as Json)).toEqual(expect.arrayContaining(["Location", "Idempotent-Replayed", "X-Request-Id", "RateLimit"]));
    // Public operations opt out of the key; every other one inherits it.
    for (const { path, method, op } of operations()) {
      const isPublic = ["/healthz", "/readyz", "/metrics", "/openapi.json"].includes(path);
      expect([method, path, op.security]).toEqual([method, path, isPublic ? [] : undefined]);
      // Every error status is answered with the shared Error schema.
      for (const [status, response] of Object.entries(op.responses as Json)) {
        if (Number(status) < 400) continue;
        const r = (typeof (response as Json).$ref === "string" ? resolvePointer(doc, (response as Json).$ref as string) : response) as Json;
        expect([method, path, status, ((r.content as Json)["application/json"] as Json).schema]).toEqual([method, path, status, { $ref: "#/components/schemas/Error" }]);
      }
    }
    const inbox = ((doc.paths as Json)["/inbox"] as Json).get as Json;
    const names = (inbox.parameters as Json[]).filter((p) => p.in === "query").map((p) => p.name);
    expect(names.sort()).toEqual(["cursor", "limit", "mode", "since", "source", "status", "tag", "type", "until", "visibility_timeout", "wait_seconds"]);
  });

  test("every route registered in the Koa routers is documented, and every documented operation is routed", async () => {
    const deps = h.api.deps;
    const registered = [eventRoutes(deps), ackRoutes(deps), inboxRoutes(deps), healthRoutes(deps)].flatMap(routesOf);
    // The two routes createApp adds next to the health routes.
    registered.push("GET /metrics", "GET /openapi.json");
    const documented = operations().map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    expect(registered.length).toBeGreaterThanOrEqual(14);
    expect(registered.filter((r) => !documented.includes(r))).toEqual([]);
    expect(documented.filter((d) => !registered.includes(d))).toEqual([]);

    // And the running app answers each of them: public ones without a key, the others 401 (a route
    // that does not exist would be the router's 404).
    const sampleId = "evt_01J00000000000000000000000";
    for (const op of operations()) {
      const path = op.path.replace("{id}", sampleId);
      const res = await h.request(op.method.toUpperCase(), path);
      const isPublic = op.op.security !== undefined;
      if (isPublic) expect([op.path, res.status]).toEqual([op.path, 200]);
      else expect([op.method, op.path, res.status, res.headers.get("www-authenticate")]).toEqual([op.method, op.path, 401, 'Bearer realm="triggers"']);
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
});
