import { startHarness, type Harness } from "../helpers/harness";
import { resolvePointer, validatorAt } from "../helpers/openapi-validator";

/*
 * A schema-driven fuzz of the served /openapi.json: requests are generated from each operation's
 * parameters and body schemas (seeded, so a failure repeats). Every request the document allows
 * must not be refused with 400 unless its code is one of the operation's x-rules, nor fail with
 * 5xx; every request the document forbids (one field broken) must be refused.
 */

type Json = Record<string, any>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Sampler {
  constructor(
    private readonly doc: Json,
    readonly rand: () => number,
  ) {}

  int(min: number, max: number): number {
    return min + Math.floor(this.rand() * (max - min + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rand() * list.length)]!;
  }

  deref(s: Json): Json {
    while (typeof s.$ref === "string") s = resolvePointer(this.doc, s.$ref) as Json;
    return s;
  }

  /** A string matching a pattern made of literals and bracket classes with quantifiers (the shapes this document uses). */
  fromPattern(pattern: string, min: number, max: number): string {
    const body = pattern.replace(/^\^/, "").replace(/\$$/, "");
    const tokens: Array<{ chars: string[]; min: number; max: number }> = [];
    let i = 0;
    while (i < body.length) {
      let chars: string[];
      if (body[i] === "[") {
        const end = body.indexOf("]", i + 2);
        chars = classChars(body.slice(i + 1, end));
        i = end + 1;
      } else if (body[i] === "\\") {
        chars = [body[i + 1]!];
        i += 2;
      } else chars = [body[i++]!];
      let lo = 1;
      let hi = 1;
      const q = /^(\*|\+|\{(\d+)(?:,(\d+))?\})/.exec(body.slice(i));
      if (q) {
        i += q[0].length;
        if (q[1] === "*") [lo, hi] = [0, 12];
        else if (q[1] === "+") [lo, hi] = [1, 12];
        else [lo, hi] = [Number(q[2]), q[3] === undefined ? Number(q[2]) : Number(q[3])];
      }
      tokens.push({ chars, min: lo, max: hi });
    }
    let out = tokens.map((t) => Array.from({ length: this.int(t.min, t.max) }, () => this.pick(t.chars)).join("")).join("");
    const last = tokens[tokens.length - 1];
    while (out.length < min && last) out += this.pick(last.chars);
    return out.slice(0, Math.max(max, 1));
  }

  value(schema: Json, name = ""): unknown {
    const s = this.deref(schema);
    if ("const" in s) return s.const;
    if (Array.isArray(s.enum)) return this.pick(s.enum);
    if (Array.isArray(s.anyOf)) return this.value(this.pick(s.anyOf), name);
    if (Array.isArray(s.oneOf)) return this.value(this.pick(s.oneOf), name);
    const types = Array.isArray(s.type) ? s.type : s.type === undefined ? ["json"] : [s.type];
    const type = types.length > 1 && this.rand() < 0.8 ? types.find((t: string) => t !== "null") : this.pick(types);
    switch (type) {
      case "null":
        return null;
      case "boolean":
        return this.rand() < 0.5;
      case "integer":
      case "number": {
        // No request waits: a long poll's wait is sampled at 0 (its bounds are checked among the forbidden).
        if (name === "wait_seconds") return 0;
        const min = s.minimum ?? -1000;
        const max = s.maximum ?? 1000;
        return this.pick([min, max, this.int(min, Math.min(max, min + 1000))]);
      }
      case "string": {
        if (Array.isArray(s.examples) && s.examples.length > 0) return this.pick(s.examples);
        const min = s.minLength ?? 0;
        const max = Math.min(s.maxLength ?? 24, 24);
        if (s.format === "date-time") return this.pick(["2026-01-02T03:04:05Z", "1999-12-31T23:59:59.123+01:00", "9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z"]);
        if (s.format === "uuid") return "0f8fad5b-d9cb-469f-a165-70867728950e";
        if (typeof s.pattern === "string") return this.fromPattern(s.pattern, Math.max(min, 1), max);
        return this.fromPattern("^[a-z0-9]+$", Math.max(min, 1), Math.max(max, 1));
      }
      case "array": {
        const n = this.int(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3));
        const items: unknown[] = [];
        for (let tries = 0; items.length < n && tries < 20; tries++) {
          const v = this.value(s.items ?? {}, name);
          if (!s.uniqueItems || !items.some((x) => JSON.stringify(x) === JSON.stringify(v))) items.push(v);
        }
        return items;
      }
      case "object": {
        const out: Json = {};
        const required = new Set<string>(s.required ?? []);
        for (const [k, p] of Object.entries((s.properties ?? {}) as Json)) if (required.has(k) || this.rand() < 0.5) out[k] = this.value(p, k);
        return out;
      }
      default:
        // Any JSON value (a payload).
        return this.pick([null, 1, "s", true, { a: [1, "x", null] }, [1, 2, 3]]);
    }
  }
}

function classChars(cls: string): string[] {
  if (cls.startsWith("^")) return ["a", "b", "Z", "0", "-", " ", "é"];
  const out: string[] = [];
  for (let i = 0; i < cls.length; i++) {
    let c = cls[i]!;
    if (c === "\\" && cls[i + 1] === "x") {
      c = String.fromCharCode(parseInt(cls.slice(i + 2, i + 4), 16));
      i += 3;
    } else if (c === "\\") c = cls[++i]!;
    if (cls[i + 1] === "-" && i + 2 < cls.length) {
      let end = cls[i + 2]!;
      if (end === "\\" && cls[i + 3] === "x") {
        end = String.fromCharCode(parseInt(cls.slice(i + 4, i + 6), 16));
        i += 5;
      } else i += 2;
      for (let code = c.charCodeAt(0); code <= end.charCodeAt(0); code++) out.push(String.fromCharCode(code));
    } else out.push(c);
  }
  return out;
}

interface Generated {
  method: string;
  path: string;
  query: Array<[string, string]>;
  headers: Record<string, string>;
  body?: unknown;
  /** The body's media type: one the operation documents with a schema (application/json, a CloudEvents one). */
  contentType: string;
  op: Json;
  template: string;
}

/** One request the document allows for an operation. */
function allowedRequest(doc: Json, s: Sampler, template: string, method: string, op: Json): Generated {
  const params = ((op.parameters ?? []) as Json[]).map((p) => s.deref(p));
  let path = template;
  const query: Array<[string, string]> = [];
  const headers: Record<string, string> = {};
  const serialise = (name: string, v: unknown) => {
    for (const x of Array.isArray(v) ? v : [v]) query.push([name, String(x)]);
  };
  for (const p of params) {
    if (p.in === "path") path = path.replace(`{${p.name}}`, encodeURIComponent(String(s.value(p.schema, p.name))));
    else if (p.in === "header" && p.name !== "X-Request-Id" && s.rand() < 0.5) headers[p.name] = String(s.value(p.schema, p.name));
    else if (p.in === "query" && p.style === "form" && p.explode === true && s.deref(p.schema).type !== "array") {
      for (const [k, v] of Object.entries(s.value(p.schema) as Json)) serialise(k, v);
    } else if (p.in === "query" && (p.required || s.rand() < 0.5)) serialise(p.name, s.value(p.schema, p.name));
  }
  // One of the documented media types that state a schema, chosen at random.
  const media = Object.entries((op.requestBody?.content ?? {}) as Record<string, Json>).filter(([, m]) => m.schema !== undefined);
  const [contentType, content] = media.length > 0 ? media[s.int(0, media.length - 1)]! : ["application/json", undefined];
  // Binary mode's ce-* headers choose a mode of their own: a body of a schema-stated media type is sent without them.
  if (content !== undefined) for (const h of Object.keys(headers)) if (h.toLowerCase().startsWith("ce-")) delete headers[h];
  const body = content && (op.requestBody.required || s.rand() < 0.5) ? s.value(content.schema) : undefined;
  return { method: method.toUpperCase(), path, query, headers, body, contentType, op, template };
}

/** The same request with one thing the document forbids; undefined when the operation has nothing to break that way. */
function forbiddenRequest(s: Sampler, r: Generated): { what: string; req: Generated } | undefined {
  const params = ((r.op.parameters ?? []) as Json[]).map((p) => s.deref(p));
  const kinds: Array<() => { what: string; req: Generated } | undefined> = [
    () => ({ what: "an undeclared query parameter", req: { ...r, query: [...r.query, ["zz_undeclared", "1"]] } }),
    () => {
      const p = params.find((q) => q.in === "path");
      return p ? { what: `path ${p.name} off its pattern`, req: { ...r, path: r.template.replace(`{${p.name}}`, "!nope").replace(/\{[^}]+\}/g, "x") } } : undefined;
    },
    () => {
      if (!isObject(r.body)) return undefined;
      return { what: "an extra body property", req: { ...r, body: { ...r.body, zz_extra: 1 } } };
    },
    () => (r.op.requestBody?.required ? { what: "no body", req: { ...r, body: undefined } } : undefined),
    () => {
      // GET /inbox: a parameter of the other mode (status and cursor are peek's, visibility_timeout and wait_seconds lease's).
      if (r.template !== "/inbox") return undefined;
      const peek = r.query.some(([k, v]) => k === "mode" && v === "peek");
      return { what: "a parameter of the other mode", req: { ...r, query: [...r.query, peek ? ["visibility_timeout", "30"] : ["status", "pending"]] } };
    },
    () => {
      // An integer query parameter past its maximum (GET /inbox's limit, visibility_timeout, wait_seconds).
      const q = r.query.find(([k]) => ["limit", "visibility_timeout", "wait_seconds"].includes(k));
      if (!q) return undefined;
      const over = { limit: "501", visibility_timeout: "3601", wait_seconds: "21" }[q[0] as "limit"];
      return { what: `${q[0]} past its maximum`, req: { ...r, query: r.query.map(([k, v]) => [k, k === q[0] ? over : v] as [string, string]) } };
    },
  ];
  const start = s.int(0, kinds.length - 1);
  for (let i = 0; i < kinds.length; i++) {
    const made = kinds[(start + i) % kinds.length]!();
    if (made) return made;
  }
  return undefined;
}

const url = (r: Generated) => `${r.path}${r.query.length ? `?${new URLSearchParams(r.query).toString()}` : ""}`;

describe("schema-driven fuzz of /openapi.json", () => {
  let h: Harness;
  let doc: Json;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    doc = (await h.request("GET", "/openapi.json")).body as Json;
    key = await h.key("openapi-fuzz");
  });
  afterAll(() => h.close());

  const operations = () =>
    Object.entries(doc.paths as Json).flatMap(([template, item]) =>
      Object.entries(item as Json)
        .filter(([m]) => ["get", "head", "post", "put", "patch", "delete", "options"].includes(m))
        .map(([method, op]) => ({ template, method, op: op as Json })),
    );

  test("1 200 requests the document allows: none refused for a rule it does not state, none a 5xx", async () => {
    const s = new Sampler(doc, prng(33));
    const v = await validatorAt(h.url);
    const ops = operations();
    const refused: string[] = [];
    const statuses = new Map<number, number>();
    const acceptedMedia = new Set<string>();
    for (let i = 0; i < 1200; i++) {
      const { template, method, op } = ops[i % ops.length]!;
      const r = allowedRequest(doc, s, template, method, op);
      const raw = r.body === undefined ? undefined : JSON.stringify(r.body);
      const headers = { ...r.headers, ...(raw === undefined ? {} : { "Content-Type": r.contentType }) };
      // The generator's own check: the document allows what it generated.
      expect([r.method, url(r), v.requestProblems({ method: r.method, path: url(r), headers, body: raw })]).toEqual([r.method, url(r), []]);
      const res = await h.request(r.method, url(r), { key, headers: r.headers, ...(raw === undefined ? {} : { raw, headers: headers }) });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (raw !== undefined && res.status < 300) acceptedMedia.add(`${r.method} ${template} ${r.contentType}`);
      const code: string | undefined = res.body?.error?.code;
      const stated = code !== undefined && ((op["x-rules"] ?? []) as string[]).some((rule) => rule.includes(code));
      if ((res.status === 400 && !stated) || res.status >= 500) refused.push(`${r.method} ${url(r)} ${raw ?? ""} → ${res.status} ${res.text.slice(0, 200)}`);
    }
    expect(refused).toEqual([]);
    // The fuzz reached the handlers: successes and the handlers' own answers, not only refusals.
    expect((statuses.get(200) ?? 0) + (statuses.get(202) ?? 0) + (statuses.get(201) ?? 0)).toBeGreaterThan(300);
    // Every request media type the document states a schema for was accepted at least once (CloudEvents structured and batch mode included).
    const documented = ops.flatMap(({ template, method, op }) =>
      Object.entries((op.requestBody?.content ?? {}) as Record<string, Json>)
        .filter(([type, m]) => m.schema !== undefined && type.startsWith("application/cloudevents"))
        .map(([type]) => `${method.toUpperCase()} ${template} ${type}`),
    );
    expect(documented.filter((d) => !acceptedMedia.has(d))).toEqual([]);
  }, 300_000);

  test("requests the document forbids are refused (400, or 404 for a path parameter that cannot exist)", async () => {
    const s = new Sampler(doc, prng(34));
    const v = await validatorAt(h.url);
    const ops = operations().filter(({ method }) => method !== "options" && method !== "head");
    const accepted: string[] = [];
    let sent = 0;
    for (let i = 0; i < 300; i++) {
      const { template, method, op } = ops[i % ops.length]!;
      const broken = forbiddenRequest(s, allowedRequest(doc, s, template, method, op));
      if (!broken) continue;
      const r = broken.req;
      const raw = r.body === undefined ? undefined : JSON.stringify(r.body);
      const headers = { ...r.headers, ...(raw === undefined ? {} : { "Content-Type": r.contentType }) };
      expect([broken.what, v.requestProblems({ method: r.method, path: url(r), headers, body: raw }).length > 0]).toEqual([broken.what, true]);
      const res = await h.request(r.method, url(r), { key, headers, ...(raw === undefined ? {} : { raw }) });
      sent++;
      const expected = broken.what.startsWith("path") ? [404] : [400];
      if (!expected.includes(res.status)) accepted.push(`${broken.what}: ${r.method} ${url(r)} ${raw ?? ""} → ${res.status} ${res.text.slice(0, 200)}`);
    }
    expect(sent).toBeGreaterThan(250);
    expect(accepted).toEqual([]);
  }, 300_000);
});
