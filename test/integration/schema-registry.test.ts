import { CloudEvent, HTTP } from "cloudevents";
import { startHarness, type Harness } from "../helpers/harness";
import { SchemaRegistry } from "../../src/schemas/registry";
import { TEST_REDIS_URL } from "../helpers/env";
import Redis from "ioredis";
import { TcpProxy } from "../helpers/tcp-proxy";

/** Schemas in the shape of a payments/commerce event catalogue (Stripe-, Adyen- and Shopify-like types). */
const PAYMENT_SUCCEEDED = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://catalog.example.com/payments/payment.succeeded.json",
  title: "payment.succeeded",
  type: "object",
  required: ["payment_id", "amount", "currency", "customer"],
  properties: {
    payment_id: { type: "string", pattern: "^pay_[A-Za-z0-9]{8,32}$" },
    amount: { type: "integer", minimum: 1, description: "Minor units" },
    currency: { type: "string", pattern: "^[a-z]{3}$" },
    customer: { $ref: "#/$defs/customer" },
    method: { enum: ["card", "sepa_debit", "ideal"] },
    metadata: { type: "object", additionalProperties: { type: "string", maxLength: 500 }, maxProperties: 50 },
  },
  $defs: { customer: { type: "object", required: ["id"], properties: { id: { type: "string" }, email: { type: "string", format: "email" } } } },
};

const ORDER_CREATED = {
  type: "object",
  required: ["order_id", "line_items", "total"],
  properties: {
    order_id: { type: "string" },
    line_items: {
      type: "array",
      minItems: 1,
      items: { type: "object", required: ["sku", "quantity", "price"], properties: { sku: { type: "string" }, quantity: { type: "integer", minimum: 1 }, price: { type: "number", minimum: 0 } } },
    },
    total: { type: "number", minimum: 0 },
    shipping_address: { type: "object", properties: { country: { type: "string", minLength: 2, maxLength: 2 } } },
  },
};

const REFUND_CREATED = {
  type: "object",
  required: ["refund_id", "payment_id", "amount", "reason"],
  properties: { refund_id: { type: "string" }, payment_id: { type: "string" }, amount: { type: "integer", minimum: 1 }, reason: { enum: ["duplicate", "fraudulent", "requested_by_customer"] } },
  additionalProperties: false,
};

const payment = (over: Record<string, unknown> = {}) => ({ payment_id: "pay_ABCDEFGH12", amount: 1999, currency: "eur", customer: { id: "cus_1", email: "a@example.com" }, method: "card", ...over });

describe("schema registry", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `schemas-${++n}`;
    return { id, key: await h.key(id) };
  };
  const put = (key: string, type: string, schema: unknown, compatibility?: string) => h.request("PUT", `/schemas/${type}`, { key, body: { schema, ...(compatibility ? { compatibility } : {}) } });

  beforeAll(async () => {
    h = await startHarness({ redis: true, env: { SCHEMA_MAX_TYPES_PER_TENANT: "4", SCHEMA_MAX_VERSIONS_PER_TYPE: "3" } });
  });
  afterAll(() => h.close());

  test("register, list, read with versions, delete; PUT of the same schema is not a new version", async () => {
    const t = await tenant();
    const created = await put(t.key, "payment.succeeded", PAYMENT_SUCCEEDED);
    expect([created.status, created.body.version, created.body.compatibility, created.headers.get("location")]).toEqual([201, 1, "backward", "/schemas/payment.succeeded"]);
    expect((await put(t.key, "payment.succeeded", PAYMENT_SUCCEEDED)).status).toBe(200);
    expect((await put(t.key, "order.created", ORDER_CREATED)).status).toBe(201);
    const list = await h.request("GET", "/schemas", { key: t.key });
    expect(list.body.data.map((s: { type: string; version: number; versions: number }) => [s.type, s.version, s.versions])).toEqual([
      ["order.created", 1, 1],
      ["payment.succeeded", 1, 1],
    ]);
    const read = await h.request("GET", "/schemas/payment.succeeded", { key: t.key });
    expect([read.body.version, read.body.schema, read.body.versions.length]).toEqual([1, PAYMENT_SUCCEEDED, 1]);
    expect((await h.request("DELETE", "/schemas/order.created", { key: t.key })).status).toBe(204);
    expect((await h.request("GET", "/schemas/order.created", { key: t.key })).status).toBe(404);
    expect((await h.request("DELETE", "/schemas/order.created", { key: t.key })).status).toBe(404);
  });

  test("an event is validated against the latest version: 422 with JSON pointers; the accepted one records its version", async () => {
    const t = await tenant();
    await put(t.key, "payment.succeeded", PAYMENT_SUCCEEDED);
    const ok = await h.request("POST", "/events", { key: t.key, body: { type: "payment.succeeded", payload: payment() } });
    expect(ok.status).toBe(202);
    const bad = await h.request("POST", "/events", { key: t.key, body: { type: "payment.succeeded", payload: payment({ amount: 0, currency: "EURO", customer: {}, method: "cash" }) } });
    expect([bad.status, bad.body.error.code]).toEqual([422, "schema_validation_failed"]);
    expect(bad.body.error.details.map((d: { pointer: string }) => d.pointer).sort()).toEqual(["/amount", "/currency", "/customer/id", "/method"]);
    expect(bad.body.error.details[0]).toEqual(expect.objectContaining({ message: expect.any(String), keyword: expect.any(String), type: "payment.succeeded", version: 1 }));
    // Another type, and another tenant's event of the same type, are not validated.
    expect((await h.request("POST", "/events", { key: t.key, body: { type: "payment.failed", payload: 1 } })).status).toBe(202);
    const other = await tenant();
    expect((await h.request("POST", "/events", { key: other.key, body: { type: "payment.succeeded", payload: 1 } })).status).toBe(202);
    const stored = await h.eventually(async () => {
      const r = await h.request("GET", `/events/${ok.body.id}`, { key: t.key });
      return r.body.status !== "queued" ? r : undefined;
    });
    expect(stored.body.schema_version).toBe(1);
    // As a CloudEvent, the version is the triggersschemaversion extension.
    const asCloudEvent = await h.request("GET", `/events/${ok.body.id}`, { key: t.key, headers: { Accept: "application/cloudevents+json" } });
    expect([asCloudEvent.status, asCloudEvent.body.triggersschemaversion]).toEqual([200, 1]);
    const fromOtherTenant = await h.request("GET", `/events/${ok.body.id}`, { key: other.key, headers: { Accept: "application/cloudevents+json" } });
    expect(fromOtherTenant.status).toBe(404);
    // A second version applies from the next event on.
    // (A new property of an open object would narrow what v1 accepted: the rule refuses it.)
    const narrowing = { ...PAYMENT_SUCCEEDED, properties: { ...PAYMENT_SUCCEEDED.properties, captured: { type: "boolean" } } };
    expect((await put(t.key, "payment.succeeded", narrowing)).body.error.code).toBe("schema_incompatible");
    const v2 = { ...PAYMENT_SUCCEEDED, properties: { ...PAYMENT_SUCCEEDED.properties, method: { enum: ["card", "sepa_debit", "ideal", "paypal"] } } };
    expect((await put(t.key, "payment.succeeded", v2)).body.version).toBe(2);
    const later = await h.request("POST", "/events", { key: t.key, body: { type: "payment.succeeded", payload: payment({ method: "paypal" }) } });
    const laterStored = await h.eventually(async () => (await h.sql<{ schema_version: number }>("SELECT schema_version FROM events WHERE id = $1", [later.body.id]))[0]);
    expect(laterStored.schema_version).toBe(2);
    expect((await h.request("POST", "/events", { key: t.key, body: { type: "payment.succeeded", payload: payment({ method: "cash" }) } })).body.error.details[0].pointer).toBe("/method");
  });

  test("a batch is refused whole with each bad item's index and pointers; CloudEvents are validated too", async () => {
    const t = await tenant();
    await put(t.key, "order.created", ORDER_CREATED);
    const good = { order_id: "o1", line_items: [{ sku: "s", quantity: 1, price: 2 }], total: 2 };
    const res = await h.request("POST", "/events/batch", {
      key: t.key,
      body: { events: [{ type: "order.created", payload: good }, { type: "order.created", payload: { ...good, line_items: [] } }, { type: "order.created", payload: { ...good, line_items: [{ sku: "s", quantity: 0, price: 1 }], total: -1 } }] },
    });
    expect([res.status, res.body.error.code]).toEqual([422, "schema_validation_failed"]);
    expect(res.body.error.details.map((d: { index: number; pointer: string }) => [d.index, d.pointer]).sort()).toEqual([
      [1, "/line_items"],
      [2, "/line_items/0/quantity"],
      [2, "/total"],
    ]);
    expect(await h.sql("SELECT 1 FROM events WHERE tenant_id = $1", [t.id])).toEqual([]);
    const ce = new CloudEvent({ id: "x-1", source: "/shop", type: "order.created", data: { order_id: 5 } });
    const message = HTTP.structured(ce);
    const refused = await h.request("POST", "/events", { key: t.key, raw: message.body as string, headers: { "Content-Type": "application/cloudevents+json" } });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details.map((d: { pointer: string }) => d.pointer).sort()).toEqual(["/line_items", "/order_id", "/total"]);
  });

  test("backward compatibility: a new optional field or a wider bound passes; a new required field, a removed value or a closed object is 409", async () => {
    const t = await tenant();
    await put(t.key, "refund.created", REFUND_CREATED);
    const incompatible: Array<[unknown, string]> = [
      [{ ...REFUND_CREATED, required: [...REFUND_CREATED.required, "currency"], properties: { ...REFUND_CREATED.properties, currency: { type: "string" } } }, "/required"],
      [{ ...REFUND_CREATED, properties: { ...REFUND_CREATED.properties, reason: { enum: ["duplicate", "fraudulent"] } } }, "/properties/reason/enum"],
      [{ ...REFUND_CREATED, properties: { ...REFUND_CREATED.properties, amount: { type: "integer", minimum: 100 } } }, "/properties/amount/minimum"],
      [{ ...REFUND_CREATED, properties: { ...REFUND_CREATED.properties, amount: { type: "string" } } }, "/properties/amount/type"],
    ];
    for (const [schema, where] of incompatible) {
      const res = await put(t.key, "refund.created", schema);
      expect([where, res.status, res.body.error.code]).toEqual([where, 409, "schema_incompatible"]);
      expect(res.body.error.details.map((d: { message: string }) => d.message).join("\n")).toContain(where);
    }
    const wider = { ...REFUND_CREATED, properties: { ...REFUND_CREATED.properties, amount: { type: "number", minimum: 0 }, note: { type: "string" }, reason: { enum: ["duplicate", "fraudulent", "requested_by_customer", "other"] } } };
    expect((await put(t.key, "refund.created", wider)).body.version).toBe(2);
    // "none" registers what the rule refuses.
    expect((await put(t.key, "refund.created", incompatible[0]![0], "none")).status).toBe(201);
    // And a type has at most SCHEMA_MAX_VERSIONS_PER_TYPE (3 here) versions.
    const res = await put(t.key, "refund.created", { ...REFUND_CREATED, title: "x" }, "none");
    expect([res.status, res.body.error.code]).toEqual([409, "schema_quota_exceeded"]);
  });

  test("patterns that backtrack catastrophically on V8 are registered and run in linear time: the event gets its 422, the API keeps answering", async () => {
    const t = await tenant();
    const schema = { type: "object", properties: { a: { type: "string", pattern: "^(a*){30}b$" }, b: { type: "string", pattern: "^" + "a*".repeat(40) + "b$" } }, patternProperties: { "^(x+x+)+y$": { type: "integer" } } };
    expect((await put(t.key, "redos.probe", schema)).status).toBe(201);
    // On a backtracking engine each of these values would hold the process far past the test's deadline.
    const hostile = "a".repeat(5000) + "c";
    const sent = h.request("POST", "/events", { key: t.key, body: { type: "redos.probe", payload: { a: hostile, b: hostile, ["x".repeat(5000) + "y"]: "no" } } });
    const other = await tenant();
    expect((await h.request("POST", "/events", { key: other.key, body: { type: "ordinary", payload: {} } })).status).toBe(202);
    const res = await sent;
    expect(res.status).toBe(422);
    expect(res.body.error.details.map((d: { pointer: string }) => d.pointer).sort()).toEqual(["/a", "/b", `/${"x".repeat(5000)}y`]);
    expect((await h.request("POST", "/events", { key: t.key, body: { type: "redos.probe", payload: { a: "aaab", b: "b" } } })).status).toBe(202);
  });

  test("hostile schemas are refused with a 400 naming the limit; what is not a schema is invalid_schema", async () => {
    const t = await tenant();
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 40; i++) deep = { type: "object", properties: { a: deep } };
    const hostile: Array<[unknown, string]> = [
      [{ $ref: "https://evil.example.com/schema.json" }, "remote_ref"],
      [{ properties: { a: { $ref: "other.json#/x" } } }, "remote_ref"],
      [{ type: "string", pattern: "(a)\\1" }, "pattern_cost"],
      [{ type: "string", pattern: "^(?=a)\\w+$" }, "pattern_cost"],
      [{ patternProperties: { "(?<!x)y": true } }, "pattern_cost"],
      [{ type: "string", pattern: "a".repeat(600) }, "pattern_length"],
      [deep, "schema_depth"],
      [{ enum: Array.from({ length: 3000 }, (_, i) => [i]) }, "schema_nodes"],
      [{ description: "x".repeat(70_000) }, "schema_bytes"],
      [{ type: "array", uniqueItems: true }, "unique_items"],
      [{ properties: { tags: { type: "array", uniqueItems: true, maxItems: 5000 } } }, "unique_items"],
    ];
    for (const [schema, limit] of hostile) {
      const res = await put(t.key, "hostile.type", schema);
      expect([limit, res.status, res.body.error?.code, res.body.error?.details?.[0]?.limit]).toEqual([limit, 400, "schema_limit_exceeded", limit]);
    }
    for (const schema of [{ type: 5 }, { minimum: "one" }, { $schema: "http://json-schema.org/draft-04/schema#" }, { $ref: "#/$defs/missing" }, { description: "nul \u0000" }, { properties: { "\ud800": {} } }]) {
      const res = await put(t.key, "hostile.type", schema);
      expect([schema, res.status, res.body.error.code]).toEqual([schema, 400, "invalid_schema"]);
    }
    const body = await h.request("PUT", "/schemas/hostile.type", { key: t.key, body: { schema: {}, extra: 1 } });
    expect([body.status, body.body.error.code]).toEqual([400, "validation_failed"]);
    expect(await h.request("GET", "/schemas", { key: t.key }).then((r) => r.body.data)).toEqual([]);
  });

  test("quota of types per tenant; scope schemas:manage; another tenant's schemas are 404", async () => {
    const t = await tenant();
    for (const type of ["a.1", "a.2", "a.3", "a.4"]) expect((await put(t.key, type, { type: "object" })).status).toBe(201);
    const over = await put(t.key, "a.5", { type: "object" });
    expect([over.status, over.body.error.code]).toEqual([409, "schema_quota_exceeded"]);
    const writer = await h.key(t.id, ["events:write", "inbox:read"]);
    expect((await h.request("GET", "/schemas", { key: writer })).status).toBe(403);
    expect((await put(writer, "a.6", {})).status).toBe(403);
    const manager = await h.key(t.id, ["schemas:manage"]);
    expect((await h.request("GET", "/schemas/a.1", { key: manager })).status).toBe(200);
    const other = await tenant();
    expect((await h.request("GET", "/schemas/a.1", { key: other.key })).status).toBe(404);
    expect((await h.request("DELETE", "/schemas/a.1", { key: other.key })).status).toBe(404);
  });

  test("another API process's cache drops a tenant's schemas when one is registered (Redis), and re-reads them after its TTL without Redis", async () => {
    const t = await tenant();
    const redis = new Redis(TEST_REDIS_URL);
    const base = { prisma: h.c.db.prisma, bounds: h.config.schemas, maxTenants: 10, prefix: h.config.redisPrefix, logger: h.c.logger };
    const subscribed = new SchemaRegistry({ ...base, ttlMs: 3_600_000, redis });
    const alone = new SchemaRegistry({ ...base, ttlMs: 300 });
    subscribed.start();
    try {
      await h.eventually(async () => (await redis.pubsub("NUMSUB", `${h.config.redisPrefix}:schemas`))[1] as number >= 2);
      expect((await subscribed.typesOf(t.id)).size).toBe(0);
      expect((await alone.typesOf(t.id)).size).toBe(0);
      expect((await put(t.key, "order.created", ORDER_CREATED)).status).toBe(201);
      // Announced: the next lookup reads the durable record again.
      await h.eventually(async () => (await subscribed.typesOf(t.id)).get("order.created")?.version === 1);
      // Without Redis the entry is stale until its TTL, then read again.
      await h.eventually(async () => (await alone.typesOf(t.id)).get("order.created")?.version === 1);
    } finally {
      await subscribed.close();
      redis.disconnect();
    }
  });

  test("a process whose Redis connection drops misses announcements: on reconnecting it drops every entry and reads the durable record", async () => {
    const t = await tenant();
    const proxy = await TcpProxy.forUrl(TEST_REDIS_URL).start();
    const redis = new Redis(proxy.rewrite(TEST_REDIS_URL), { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    redis.on("error", () => undefined);
    const registry = new SchemaRegistry({ prisma: h.c.db.prisma, bounds: h.config.schemas, maxTenants: 10, prefix: h.config.redisPrefix, logger: h.c.logger, ttlMs: 3_600_000, redis });
    registry.start();
    try {
      await h.eventually(async () => ((await h.c.redis!.pubsub("NUMSUB", `${h.config.redisPrefix}:schemas`))[1] as number) >= 2);
      expect((await registry.typesOf(t.id)).size).toBe(0);
      proxy.reset();
      proxy.cut();
      // Registered while the process cannot hear it: its entry (an hour's TTL) still says "no schema".
      expect((await put(t.key, "order.created", ORDER_CREATED)).status).toBe(201);
      expect((await registry.typesOf(t.id)).size).toBe(0);
      proxy.restore();
      await h.eventually(async () => (await registry.typesOf(t.id)).get("order.created")?.version === 1);
    } finally {
      await registry.close();
      redis.disconnect();
      await proxy.stop();
    }
  });
});
