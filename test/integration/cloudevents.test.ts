import { CloudEvent, HTTP } from "cloudevents";
import { startHarness, type Harness } from "../helpers/harness";

const CE = "application/cloudevents+json";
const CE_BATCH = "application/cloudevents-batch+json";

/** A fetch answer's headers as the SDK's Message takes them. */
function headersOf(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => (out[k] = v));
  return out;
}

/**
 * CloudEvents 1.0 in (binary, structured, batch) and out (one event, a lease or a page), emitted
 * and parsed with the official SDK (cloudevents v10): what went in comes back the same.
 */
describe("CloudEvents in and out", () => {
  let h: Harness;
  let n = 0;
  const tenant = async () => {
    const id = `ce-${++n}`;
    return { id, key: await h.key(id) };
  };

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  /** A request with the SDK's own headers and body (binary mode carries any media type, so no document check of the request). */
  const send = async (key: string, path: string, message: { headers: Record<string, unknown>; body: unknown }, extra: Record<string, string> = {}) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${key}`, ...extra };
    for (const [k, v] of Object.entries(message.headers)) headers[k] = String(v);
    const body = typeof message.body === "string" || message.body instanceof Uint8Array ? message.body : JSON.stringify(message.body);
    const res = await fetch(`${h.url}${path}`, { method: "POST", headers, body: body as BodyInit });
    return { status: res.status, headers: res.headers, body: JSON.parse(await res.text()) as any };
  };

  /** The stored event as a CloudEvent, parsed by the SDK (the answer checked against the document too). */
  const readBack = async (key: string, id: string): Promise<CloudEvent<unknown>> => {
    const res = await h.eventually(async () => {
      const r = await h.request("GET", `/events/${id}`, { key, headers: { Accept: CE } });
      return r.status === 200 && r.headers.get("content-type")?.startsWith(CE) ? r : undefined;
    });
    return HTTP.toEvent({ headers: headersOf(res.headers), body: res.text }) as CloudEvent<unknown>;
  };

  const base = { source: "https://shop.example.com/orders", type: "com.example.order.created", subject: "orders/1001", time: "2026-12-06T10:11:12.345Z" };

  test("structured mode: the SDK's event comes back with the same id, source, type, subject, time, extensions and data", async () => {
    const t = await tenant();
    const event = new CloudEvent({ ...base, id: "A-1", datacontenttype: "application/json", dataschema: "https://schemas.example.com/order.json", region: "eu", priority: 5, urgent: true, data: { order: 1001, total: 25.5, items: ["a", "b"] } });
    const res = await send(t.key, "/events", HTTP.structured(event));
    expect(res.status).toBe(202);
    const back = await readBack(t.key, res.body.id);
    for (const attr of ["id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "region", "priority", "urgent"] as const) expect([attr, back[attr]]).toEqual([attr, event[attr]]);
    expect(back.data).toEqual(event.data);
    expect(back.triggersid).toBe(res.body.id);
    // The mapping: type, source and time are the envelope's own fields.
    const [row] = await h.sql<{ type: string; source: string; occurred_at: Date }>("SELECT type, source, occurred_at FROM events WHERE id = $1", [res.body.id]);
    expect(row).toEqual({ type: base.type, source: base.source, occurred_at: new Date(base.time) });
  });

  test("binary mode: JSON data, text data and binary data (data_base64) round-trip", async () => {
    const t = await tenant();
    const json = new CloudEvent({ ...base, id: "B-1", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", data: { hello: "wörld" } });
    const text = new CloudEvent({ ...base, id: "B-2", datacontenttype: "text/plain; charset=utf-8", data: "plain text, ünïcode" });
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 10]);
    const binary = new CloudEvent({ ...base, id: "B-3", datacontenttype: "application/octet-stream", data: bytes });
    for (const event of [json, text, binary] as CloudEvent<unknown>[]) {
      const res = await send(t.key, "/events", HTTP.binary(event));
      expect([event.id, res.status]).toEqual([event.id, 202]);
      const back = await readBack(t.key, res.body.id);
      for (const attr of ["id", "source", "type", "subject", "time"] as const) expect([attr, back[attr]]).toEqual([attr, event[attr]]);
      if (event === binary) {
        expect(back.data_base64).toBe(Buffer.from(bytes).toString("base64"));
        expect(Buffer.from(back.data as Uint8Array)).toEqual(Buffer.from(bytes));
      } else {
        expect(back.data).toEqual(event.data);
      }
      if (event === json) expect(back.traceparent).toBe(json.traceparent);
      expect(back.datacontenttype).toBe(event === json ? "application/json; charset=utf-8" : event.datacontenttype);
    }
  });

  test("batch mode in; a lease as a CloudEvents batch out, acknowledged by its triggerslease", async () => {
    const t = await tenant();
    const events = [1, 2, 3].map((i) => new CloudEvent({ ...base, id: `C-${i}`, subject: `orders/${i}`, data: { i } }));
    const res = await h.request("POST", "/events/batch", { key: t.key, raw: JSON.stringify(events.map((e) => e.toJSON())), headers: { "Content-Type": CE_BATCH } });
    expect(res.status).toBe(202);
    expect(res.body.data).toHaveLength(3);
    await h.eventually(async () => Number((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = $1", [t.id]))[0]!.n) === 3);
    const lease = await h.request("GET", "/inbox?limit=10", { key: t.key, headers: { Accept: CE_BATCH } });
    expect(lease.status).toBe(200);
    expect(lease.headers.get("content-type")).toMatch(/^application\/cloudevents-batch\+json/);
    expect(lease.headers.get("triggers-has-more")).toBe("false");
    const parsed = HTTP.toEvent({ headers: headersOf(lease.headers), body: lease.text }) as CloudEvent<{ i: number }>[];
    // One request's events share received_at; their order among themselves is their ids' (derived from source and id).
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
    expect([...parsed].sort(byId).map((e) => [e.id, e.subject, e.data])).toEqual(events.map((e) => [e.id, e.subject, e.data]));
    for (const e of parsed) {
      expect(e.triggerslease).toEqual(expect.any(String));
      expect(e.triggersdeliveries).toBe(1);
      const ack = await h.request("POST", `/events/${String(e.triggersid)}/ack`, { key: t.key, body: { lease_id: e.triggerslease } });
      expect(ack.status).toBe(200);
    }
    // The same page in peek mode, asked for with the query parameter.
    const peek = await h.request("GET", "/inbox?mode=peek&limit=2&format=cloudevents", { key: t.key });
    expect(peek.headers.get("content-type")).toMatch(/^application\/cloudevents-batch\+json/);
    const firstPage = (peek.body as Array<{ id: string }>).map((e) => e.id);
    expect(firstPage).toHaveLength(2);
    const cursor = peek.headers.get("triggers-next-cursor");
    expect(cursor).toEqual(expect.any(String));
    const next = await h.request("GET", `/inbox?mode=peek&limit=2&format=cloudevents&cursor=${encodeURIComponent(cursor!)}`, { key: t.key });
    expect([...firstPage, ...(next.body as Array<{ id: string }>).map((e) => e.id)].sort()).toEqual(["C-1", "C-2", "C-3"]);
    expect(next.headers.get("triggers-next-cursor")).toBeNull();
  });

  test("source and id identify an event: a resend is a replay, another body under them a 409", async () => {
    const t = await tenant();
    const event = new CloudEvent({ ...base, id: "D-1", data: { v: 1 } });
    const first = await send(t.key, "/events", HTTP.structured(event));
    const again = await send(t.key, "/events", HTTP.structured(event));
    expect([first.status, again.status, again.body.id, again.headers.get("idempotent-replayed")]).toEqual([202, 202, first.body.id, "true"]);
    // The same event in binary mode is the same event, though the SDK's binary mode declares
    // datacontenttype "application/json; charset=utf-8" where its structured mode leaves it out.
    const binary = await send(t.key, "/events", HTTP.binary(event));
    expect(HTTP.binary(event).headers["content-type"]).toMatch(/charset=utf-8/);
    expect([binary.status, binary.body.id, binary.headers.get("idempotent-replayed")]).toEqual([202, first.body.id, "true"]);
    // Data declared as another media type is another body.
    const text = await send(t.key, "/events", HTTP.binary(event.cloneWith({ datacontenttype: "text/plain", data: '{"v":1}' })));
    expect([text.status, text.body.error?.code]).toEqual([409, "idempotency_key_reused"]);
    const changed = await send(t.key, "/events", HTTP.structured(event.cloneWith({ data: { v: 2 } })));
    expect([changed.status, changed.body.error.code]).toEqual([409, "idempotency_key_reused"]);
    // Another source with the same id is another event.
    const other = await send(t.key, "/events", HTTP.structured(event.cloneWith({ source: "/elsewhere" })));
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
  });

  test("a plain event is delivered as a CloudEvent too", async () => {
    const t = await tenant();
    const res = await h.request("POST", "/events", { key: t.key, body: { type: "order.paid", payload: { n: 1 }, source: "billing", occurred_at: "2026-01-02T03:04:05Z" } });
    const back = await readBack(t.key, res.body.id);
    expect([back.id, back.source, back.type, back.time, back.datacontenttype, back.data]).toEqual([res.body.id, "billing", "order.paid", "2026-01-02T03:04:05.000Z", "application/json", { n: 1 }]);
  });

  test("spec violations are 400s naming the attribute", async () => {
    const t = await tenant();
    const good = { specversion: "1.0", id: "E-1", source: "/s", type: "com.example.t", data: 1 };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, specversion: undefined }, "specversion"],
      [{ ...good, specversion: "0.3" }, "specversion"],
      [{ ...good, id: "" }, "id"],
      [{ ...good, source: undefined }, "source"],
      [{ ...good, type: 5 }, "type"],
      [{ ...good, time: "yesterday" }, "time"],
      [{ ...good, datacontenttype: "not a type" }, "datacontenttype"],
      [{ ...good, data_base64: "AAAA" }, "data_base64"],
      [{ ...good, data: undefined, data_base64: "!!" }, "data_base64"],
      [{ ...good, "Bad-Name": "x" }, "Bad-Name"],
      [{ ...good, ext: { nested: true } }, "ext"],
      [{ ...good, ext: 2 ** 40 }, "ext"],
      [{ ...good, triggersid: "x" }, "triggersid"],
      [{ ...good, type: "has space" }, "type"],
      [{ ...good, id: "nul\u0000" }, "id"],
      [{ ...good, subject: "\ud800" }, "subject"],
      [{ ...good, ext: "a\u0000b" }, "ext"],
    ];
    for (const [body, attribute] of cases) {
      const res = await h.request("POST", "/events", { key: t.key, raw: JSON.stringify(body), headers: { "Content-Type": CE } });
      expect([attribute, res.status, res.body.error.code]).toEqual([attribute, 400, "validation_failed"]);
      expect([attribute, res.body.error.details.map((d: { path: string }) => d.path)]).toEqual([attribute, expect.arrayContaining([attribute])]);
    }
    // Binary mode: a missing attribute header, and a batch item names its index.
    const missing = await fetch(`${h.url}/events`, { method: "POST", headers: { Authorization: `Bearer ${t.key}`, "ce-specversion": "1.0", "ce-id": "x", "ce-type": "com.example.t", "Content-Type": "application/json" }, body: "{}" });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as any).error.details[0].path).toBe("source");
    const batch = await h.request("POST", "/events/batch", { key: t.key, raw: JSON.stringify([good, { ...good, id: "E-2", source: "" }]), headers: { "Content-Type": CE_BATCH } });
    expect(batch.status).toBe(400);
    expect(batch.body.error.details).toEqual([expect.objectContaining({ index: 1, path: "1.source" })]);
  });
});
