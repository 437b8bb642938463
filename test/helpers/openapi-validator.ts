import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

/** The base URI under which the document's components are registered, so `#/components/…` refs resolve. */
const ROOT = "urn:triggers:openapi";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/** One response as the harness received it. */
export interface ObservedResponse {
  readonly method: string;
  /** The request path, query string included or not. */
  readonly path: string;
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

/** One request as the harness sent it. */
export interface ObservedRequest {
  readonly method: string;
  /** The request path with its query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body as sent; undefined when none was. */
  readonly body: string | undefined;
}

/** Thrown when a live response does not match the document; names the route, the status and every mismatch. */
export class OpenApiMismatch extends Error {
  override readonly name = "OpenApiMismatch";
}

interface Route {
  readonly template: string;
  readonly regex: RegExp;
  readonly params: number;
  readonly item: Json;
}

/**
 * Validates live responses against an OpenAPI 3.1 document: the operation is found by method and
 * path template (literal paths before templated ones, as OpenAPI specifies), the status must be
 * documented, the media type must be one of the documented ones, a JSON body must validate against
 * the response schema (JSON Schema 2020-12 with ajv), and documented headers must be present when
 * required and valid when present. A path or method the document does not describe may only be
 * answered 404 (or 405 on a documented path, 501 for an unknown method, or 400/408/431 refused
 * before routing) with the shared Error
 * shape. `requestProblems` checks a request the same way: the harness fails any request the
 * server accepted (2xx) that the document forbids.
 */
export class OpenApiValidator {
  private readonly ajv: Ajv2020;
  /** Query strings as the server reads them: strings coerced to the declared types, a lone value into a declared array. */
  private readonly coercing: Ajv2020;
  private readonly routes: Route[];
  private readonly compiled = new WeakMap<object, ValidateFunction>();

  constructor(readonly doc: Json) {
    if (typeof doc.openapi !== "string" || !/^3\.1\.\d+$/.test(doc.openapi)) throw new Error(`not an OpenAPI 3.1 document: openapi=${String(doc.openapi)}`);
    this.ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(this.ajv);
    // The document is registered whole (its components hold the schemas refs point at); "components"
    // and the other OpenAPI keys are not JSON Schema keywords, so they are declared as annotations.
    for (const keyword of ["components", "paths", "openapi", "info", "jsonSchemaDialect", "servers", "tags", "security"]) this.ajv.addKeyword({ keyword });
    this.ajv.addSchema({ ...doc, $id: ROOT });
    this.coercing = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, coerceTypes: "array" });
    addFormats(this.coercing);
    for (const keyword of ["components", "paths", "openapi", "info", "jsonSchemaDialect", "servers", "tags", "security"]) this.coercing.addKeyword({ keyword });
    this.coercing.addSchema({ ...doc, $id: ROOT });
    const paths = isObject(doc.paths) ? doc.paths : {};
    this.routes = Object.entries(paths)
      .map(([template, item]) => ({
        template,
        regex: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}/]+\}/g, "[^/]+")}$`),
        params: (template.match(/\{/g) ?? []).length,
        item: isObject(item) ? item : {},
      }))
      .sort((a, b) => a.params - b.params);
  }

  /**
   * What the document forbids in a request: an undocumented operation, a path parameter, query
   * parameter or header parameter that fails its schema, a query parameter it does not declare, a
   * missing required one, a body of an undocumented media type, or one that fails the body schema.
   * Empty when the document allows the request.
   */
  requestProblems(r: ObservedRequest): string[] {
    const method = r.method.toLowerCase();
    const [path, query = ""] = r.path.split("?", 2) as [string, string?];
    const route = this.routes.find((m) => m.regex.test(path));
    if (!route || !isObject(route.item[method])) return [`${r.method} ${path} is not a documented operation`];
    const op = route.item[method] as Json;
    const problems: string[] = [];
    const params = (Array.isArray(op.parameters) ? op.parameters : []).map((p) => this.deref(p));
    // Path parameters, in template order.
    const names = [...route.template.matchAll(/\{([^}/]+)\}/g)].map((m) => m[1]!);
    const values = path.match(new RegExp(`^${route.template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}/]+\}/g, "([^/]+)")}$`))?.slice(1) ?? [];
    names.forEach((name, i) => {
      const p = params.find((q) => q.in === "path" && q.name === name);
      if (p) this.checkValue(problems, `path parameter ${name}`, decodeURIComponent(values[i] ?? ""), p);
    });
    // Query parameters: each must be declared and valid; an exploded object parameter takes them all.
    const search = new URLSearchParams(query);
    const exploded = params.find((q) => q.in === "query" && q.style === "form" && q.explode === true && isObject(q.schema) && this.schemaType(q.schema) !== "array");
    if (exploded) {
      const value: Record<string, string | string[]> = {};
      for (const name of new Set(search.keys())) {
        const all = search.getAll(name);
        value[name] = all.length > 1 ? all : all[0]!;
      }
      const validate = this.compileCoercing(exploded.schema as Json);
      if (!validate(value)) problems.push(`query ${JSON.stringify(Object.fromEntries(search)).slice(0, 200)} ${this.coercing.errorsText(validate.errors, { dataVar: "query", separator: "; " })}`);
    }
    for (const name of exploded ? [] : new Set(search.keys())) {
      const p = params.find((q) => q.in === "query" && q.name === name);
      if (!p) {
        problems.push(`query parameter ${name} is not documented`);
        continue;
      }
      const schema = isObject(p.schema) ? p.schema : {};
      const all = search.getAll(name);
      if (this.schemaType(schema) === "array") this.checkSchema(problems, `query parameter ${name}`, all.map((v) => coerceHeader(v, this.schemaType((schema.items ?? {}) as Json))), schema);
      else if (all.length > 1) problems.push(`query parameter ${name} is repeated but not an array`);
      else this.checkValue(problems, `query parameter ${name}`, all[0]!, p);
    }
    const headers = new Map(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const p of params) {
      if (p.required === true && p.in === "query" && !search.has(String(p.name))) problems.push(`query parameter ${String(p.name)} is required`);
      if (p.in !== "header") continue;
      const value = headers.get(String(p.name).toLowerCase());
      if (value === undefined) {
        if (p.required === true) problems.push(`header ${String(p.name)} is required`);
      } else this.checkValue(problems, `header ${String(p.name)}`, value, p);
    }
    // The body.
    const requestBody = isObject(op.requestBody) ? op.requestBody : undefined;
    const sent = r.body !== undefined && r.body !== "";
    if (!requestBody) {
      if (sent) problems.push("a body is sent, but the operation documents none");
    } else if (!sent) {
      if (requestBody.required === true) problems.push("the request body is required");
    } else {
      const content = isObject(requestBody.content) ? requestBody.content : {};
      const contentType = (headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      // CloudEvents binary mode (a ce-specversion header): the body is the event's data, of any media type (documented as */*).
      const binary = typeof headers.get("ce-specversion") === "string" && isObject(content["*/*"]);
      const media = binary ? content["*/*"] : (content[contentType] ?? content["*/*"]);
      if (!isObject(media)) problems.push(`request content type ${JSON.stringify(contentType)} is not documented (${Object.keys(content).join(", ")})`);
      else if (!isObject(media.schema)) {
        // Any body: its schema is not stated.
      } else {
        let body: unknown;
        try {
          body = JSON.parse(r.body!);
        } catch {
          problems.push("the request body is not JSON");
          return problems;
        }
        this.checkSchema(problems, "request body", body, isObject(media.schema) ? media.schema : {});
      }
    }
    return problems;
  }

  /** Throws OpenApiMismatch when the document forbids a request the server accepted. */
  validateRequest(r: ObservedRequest, status: number): void {
    const problems = this.requestProblems(r);
    if (problems.length > 0) {
      throw new OpenApiMismatch(`${r.method} ${r.path} was accepted (${status}), but /openapi.json forbids it:\n  - ${problems.join("\n  - ")}\n  body was: ${(r.body ?? "").slice(0, 300)}`);
    }
  }

  private checkValue(problems: string[], what: string, raw: string, param: Json): void {
    const schema = isObject(param.schema) ? param.schema : {};
    this.checkSchema(problems, what, coerceHeader(raw, this.schemaType(schema)), schema);
  }

  private checkSchema(problems: string[], what: string, value: unknown, schema: Json): void {
    const validate = this.compile(schema);
    if (!validate(value)) problems.push(`${what}: ${JSON.stringify(value).slice(0, 200)} ${this.ajv.errorsText(validate.errors, { dataVar: "value", separator: "; " })}`);
  }

  /** Throws OpenApiMismatch unless the response matches the document. */
  validate(r: ObservedResponse): void {
    const method = r.method.toLowerCase();
    const path = r.path.split("?")[0]!;
    // The path's template as OpenAPI matches it (literal paths before templated ones).
    const route = this.routes.find((m) => m.regex.test(path));
    if (!route || !isObject(route.item[method])) {
      const what = `${r.method} ${path} (no documented operation${route ? ` for this method on ${route.template}` : ""})`;
      // A documented path answers another method 405 with Allow, as its x-method-not-allowed says.
      if (route && r.status === 405 && isObject(route.item["x-method-not-allowed"])) {
        this.check(what, r, this.deref(route.item["x-method-not-allowed"]));
        return;
      }
      // An unknown path is 404 not_found; any request may be refused before routing (a malformed request 400, a slow one 408, oversized headers 431).
      const expected: Record<number, string> = { 404: "not_found", 400: "bad_request", 408: "request_timeout", 431: "request_header_fields_too_large" };
      const code = expected[r.status];
      if (code === undefined) throw new OpenApiMismatch(`${what} answered ${r.status}; only ${route ? "405 (x-method-not-allowed), " : ""}${Object.keys(expected).join(", ")} are expected`);
      this.check(what, r, {
        description: "refused before routing",
        headers: { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } },
        content: { "application/json": { schema: { allOf: [{ $ref: "#/components/schemas/Error" }, { type: "object", properties: { error: { type: "object", properties: { code: { const: code } } } } }] } } },
      });
      return;
    }
    const op = route.item[method] as Json;
    const responses = isObject(op.responses) ? op.responses : {};
    const what = `${r.method} ${route.template} → ${r.status}`;
    const documented = responses[String(r.status)] ?? responses[`${String(r.status)[0]}XX`] ?? responses.default;
    if (documented === undefined) {
      throw new OpenApiMismatch(`${what}: status ${r.status} is not documented (documented: ${Object.keys(responses).join(", ")}); body: ${r.text.slice(0, 300)}`);
    }
    this.check(what, r, this.deref(documented));
  }

  private check(what: string, r: ObservedResponse, response: Json): void {
    const problems: string[] = [];
    const headers = isObject(response.headers) ? response.headers : {};
    for (const [name, raw] of Object.entries(headers)) {
      const header = this.deref(raw);
      const value = r.headers.get(name);
      if (value === null) {
        if (header.required === true) problems.push(`header ${name} is required but missing`);
        continue;
      }
      const schema = isObject(header.schema) ? header.schema : {};
      const validate = this.compile(schema);
      if (!validate(coerceHeader(value, this.schemaType(schema)))) problems.push(`header ${name}: ${JSON.stringify(value)} ${this.ajv.errorsText(validate.errors, { dataVar: name })}`);
    }
    const content = isObject(response.content) ? response.content : undefined;
    const contentType = (r.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (content === undefined) {
      if (r.text !== "") problems.push(`no body is documented, got ${contentType || "a body"}`);
    } else if (!(contentType in content)) {
      problems.push(`content type ${JSON.stringify(contentType)} is not documented (${Object.keys(content).join(", ")})`);
    } else {
      const media = content[contentType];
      const schema = isObject(media) && isObject(media.schema) ? media.schema : {};
      let body: unknown = r.text;
      if (contentType === "application/json" || contentType.endsWith("+json")) {
        try {
          body = JSON.parse(r.text);
        } catch {
          problems.push(`body is not JSON: ${r.text.slice(0, 200)}`);
          body = undefined;
        }
      }
      if (body !== undefined) {
        const validate = this.compile(schema);
        if (!validate(body)) {
          problems.push(`body ${this.ajv.errorsText(validate.errors, { dataVar: "body", separator: "; " })}`);
          problems.push(`ajv errors: ${JSON.stringify(validate.errors)}`);
          problems.push(`body was: ${r.text.slice(0, 500)}`);
        }
      }
    }
    if (problems.length > 0) throw new OpenApiMismatch(`${what} does not match /openapi.json:\n  - ${problems.join("\n  - ")}`);
  }

  /** Follows a `$ref` to a component (responses, headers, parameters) of the document. */
  private deref(node: unknown): Json {
    let current = node;
    for (let hops = 0; isObject(current) && typeof current.$ref === "string"; hops++) {
      if (hops > 10) throw new Error(`$ref loop at ${current.$ref}`);
      current = resolvePointer(this.doc, current.$ref);
    }
    if (!isObject(current)) throw new Error(`unresolvable reference ${JSON.stringify(node)}`);
    return current;
  }

  private schemaType(schema: Json): unknown {
    return typeof schema.$ref === "string" ? this.schemaType(this.deref(schema)) : schema.type;
  }

  private readonly compiledCoercing = new WeakMap<object, ValidateFunction>();

  private compileCoercing(schema: Json): ValidateFunction {
    let validate = this.compiledCoercing.get(schema);
    if (!validate) {
      validate = this.coercing.compile(absolutiseRefs(schema));
      this.compiledCoercing.set(schema, validate);
    }
    return validate;
  }

  private compile(schema: Json): ValidateFunction {
    let validate = this.compiled.get(schema);
    if (!validate) {
      validate = this.ajv.compile(absolutiseRefs(schema));
      this.compiled.set(schema, validate);
    }
    return validate;
  }
}

/** Header values are strings; a header documented as a number is compared as one. */
function coerceHeader(value: string, type: unknown): unknown {
  const numeric = type === "integer" || type === "number";
  return numeric && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

/** Resolves a local JSON pointer (`#/a/b`) in the document. */
export function resolvePointer(doc: unknown, pointer: string): unknown {
  if (!pointer.startsWith("#/")) throw new Error(`only local references are supported: ${pointer}`);
  let node: unknown = doc;
  for (const raw of pointer.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (!isObject(node) || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

/** A copy of a schema whose local refs point into the registered document. */
function absolutiseRefs(schema: unknown): Json {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!isObject(node)) return node;
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === "$ref" && typeof v === "string" && v.startsWith("#/") ? `${ROOT}${v}` : walk(v)]));
  };
  return walk(schema) as Json;
}

const validators = new Map<string, OpenApiValidator>();

/** A validator for the document text, compiled once per test process. */
export function validatorFor(documentText: string): OpenApiValidator {
  let v = validators.get(documentText);
  if (!v) {
    v = new OpenApiValidator(JSON.parse(documentText) as Json);
    validators.set(documentText, v);
  }
  return v;
}

const byServer = new Map<string, Promise<OpenApiValidator>>();

/** The validator of the document a running API serves at `${baseUrl}/openapi.json`, fetched once per base URL. */
export function validatorAt(baseUrl: string): Promise<OpenApiValidator> {
  let v = byServer.get(baseUrl);
  if (!v) {
    v = fetch(`${baseUrl}/openapi.json`).then(async (res) => {
      if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
      return validatorFor(await res.text());
    });
    byServer.set(baseUrl, v);
    v.catch(() => byServer.delete(baseUrl));
  }
  return v;
}
