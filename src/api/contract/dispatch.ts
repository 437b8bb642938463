import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import Router, { type Layer } from "@koa/router";
import compose from "koa-compose";
import type { Context, Middleware, Next } from "koa";
import { ajvDetails } from "../../domain/envelope";
import { AppError, NotFoundError, ValidationError } from "../../errors";
import { requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";
import { respondJson, takeReply } from "../response-headers";
import { allowedMethods } from "./document";
import type { Input, Operation, RouteDeps } from "./operation";

/*
 * The dispatcher of the route table: a @koa/router built from the table finds the operation of a
 * request (literal paths first, then templates, as OpenAPI matches them), answers OPTIONS and 405
 * from the same table, and runs every operation through one middleware list: authentication and
 * the rate limit (unless public), its scope, its validators, its handler. The validators are compiled once, from the operation's
 * schemas, when the app is built.
 */

const ajvOptions = { allErrors: true, strict: true, allowUnionTypes: true } as const;
/** Bodies and path parameters: JSON values as sent (no coercion). */
const exact = addFormats(new Ajv2020(ajvOptions));
/** Query strings: strings coerced to the declared types; a repeated parameter is an array, one value where an array is declared becomes one. */
const coercing = addFormats(new Ajv2020({ ...ajvOptions, coerceTypes: "array" }));

type Check = (value: unknown) => { ok: true } | { ok: false; errors: ValidateFunction["errors"] };

type Branch = { readonly schema: { properties?: Record<string, { const?: unknown }>; required?: string[] }; readonly validate: ValidateFunction };

/** The branch a value chose by a constant property (GET /inbox's mode), when a branch declares one: its value, or its absence where optional. */
function chosen(branches: readonly Branch[], value: unknown): Branch | undefined {
  if (value === null || typeof value !== "object") return undefined;
  for (const b of branches) {
    for (const [name, p] of Object.entries(b.schema.properties ?? {})) {
      if (p.const === undefined) continue;
      const v = (value as Record<string, unknown>)[name];
      if (v === p.const || (v === undefined && !(b.schema.required ?? []).includes(name))) return b;
    }
  }
  return undefined;
}

/**
 * A validator of a schema. A union of objects (query modes, body forms) reports the errors of the
 * branch the value chose by its constant property, or else of the branch it came closest to.
 */
function checker(ajv: Ajv2020, schema: object): Check {
  const whole = ajv.compile(schema);
  const branches: Branch[] = Array.isArray((schema as { anyOf?: unknown }).anyOf) ? (schema as { anyOf: Branch["schema"][] }).anyOf.map((b) => ({ schema: b, validate: ajv.compile(b) })) : [];
  return (value) => {
    if (whole(value)) return { ok: true };
    if (branches.length === 0) return { ok: false, errors: whole.errors };
    const by = chosen(branches, value);
    if (by) {
      by.validate(value);
      return { ok: false, errors: by.validate.errors };
    }
    let best: ValidateFunction["errors"] = whole.errors;
    for (const { validate: b } of branches) {
      b(value);
      if (b.errors && (best === whole.errors || b.errors.length < best!.length)) best = b.errors;
    }
    return { ok: false, errors: best };
  };
}

/** The field errors of a failed check, one per field (a value that fails its format and its pattern is named once). */
function details(errors: ValidateFunction["errors"]) {
  const seen = new Set<string>();
  return ajvDetails(errors).filter((d) => !seen.has(d.path ?? "") && seen.add(d.path ?? ""));
}

/**
 * The one response path of the table's operations: a JSON body a handler answered (with reply, or
 * as ctx.body) is written in one writeHead with the headers the request collected (respondJson); a text body (metrics, this
 * document), an empty one and HEAD's are left to Koa, as are errors (the error renderer).
 */
function respond(ctx: Context): void {
  const given = takeReply(ctx);
  if (given) {
    if (ctx.method !== "HEAD") return respondJson(ctx, given.status, given.body, given.mediaType);
    ctx.status = given.status;
    ctx.body = given.body;
    return;
  }
  const body: unknown = ctx.body;
  if (body === null || typeof body !== "object" || ctx.method === "HEAD" || Buffer.isBuffer(body) || typeof (body as { pipe?: unknown }).pipe === "function") return;
  // A JSON media type the handler chose (a CloudEvent, a CloudEvents batch), else application/json.
  const type = ctx.response.type;
  respondJson(ctx, ctx.status, body, type.endsWith("+json") ? type : "application/json");
}

const EMPTY = Object.freeze({});
const NO_INPUT: Input<unknown, unknown, unknown> = Object.freeze({ params: EMPTY, query: EMPTY, body: undefined });

/** The step that validates an operation's request and calls its handler with the typed input. */
function invoke(op: Operation, deps: RouteDeps, head: boolean): Middleware {
  const handler = ((head && op.head ? op.head : op.handler) as unknown as (d: RouteDeps) => (ctx: Context, input: Input<unknown, unknown, unknown>) => Promise<void> | void)(deps);
  const params = op.params ? checker(exact, op.params) : undefined;
  // What a path parameter that fails its schema cannot name: {id} an event, {name} a subscription.
  const notFoundWhat = op.path.includes("{name}") ? "subscription" : op.path.includes("{type}") ? "schema" : "event";
  const query = op.query ? checker(coercing, op.query) : undefined;
  const body = op.body && op.body.read !== "handler" ? { check: checker(exact, op.body.schema), limit: op.body.limit(deps), required: op.body.required } : undefined;
  // The fast path: an operation whose handler reads its own body and takes no parameters (POST /events).
  if (!params && !op.query && !body) {
    return async function invokeBare(ctx: Context): Promise<void> {
      if (ctx.querystring !== "") throw new ValidationError("this operation takes no query parameters", [{ path: "", message: "no query parameters are allowed" }]);
      await handler(ctx, NO_INPUT);
      respond(ctx);
    };
  }
  return async function invokeValidated(ctx: Context): Promise<void> {
    if (params && !params(ctx.params).ok) throw new NotFoundError(notFoundWhat);
    let q: unknown = EMPTY;
    if (query) {
      q = { ...ctx.query };
      const r = query(q);
      if (!r.ok) throw new ValidationError("invalid query", details(r.errors));
    } else if (ctx.querystring !== "") {
      throw new ValidationError("this operation takes no query parameters", [{ path: "", message: "no query parameters are allowed" }]);
    }
    let b: unknown;
    if (body && !head) {
      b = await readJsonBody(ctx, body.limit, { optional: !body.required });
      if (b !== undefined || body.required) {
        const r = body.check(b);
        if (!r.ok) throw new ValidationError("invalid body", details(r.errors));
      }
    }
    await handler(ctx, { params: ctx.params, query: q, body: b });
    respond(ctx);
  };
}

/** A request path parameter that is not a valid percent-encoding names nothing: 404, not a 500. */
function decodable(captures: readonly string[] | undefined): boolean {
  for (const c of captures ?? []) {
    if (!c.includes("%")) continue;
    try {
      decodeURIComponent(c);
    } catch {
      return false;
    }
  }
  return true;
}

/** The first step of every route: its template (Koa form) as the route label of logs and metrics, and its parameters decodable. */
function routeOf(route: string): Middleware {
  return function matched(ctx: Context, next: Next): Promise<void> {
    ctx.state.route = route;
    if (!decodable((ctx as { captures?: string[] }).captures)) throw new NotFoundError();
    return next();
  };
}

/** What a path answers to a method it does not declare: OPTIONS 204 with Allow, any other 405 with Allow through the error renderer. */
function refuse(allow: string): Middleware {
  return async function refused(ctx: Context): Promise<void> {
    if (ctx.method === "OPTIONS") {
      ctx.status = 204;
      ctx.set("Allow", allow);
      return;
    }
    throw new AppError(405, "method_not_allowed", `${ctx.method} is not allowed on this path`, [], { Allow: allow });
  };
}

/** The Koa form of an OpenAPI path template: /events/{id} -> /events/:id. */
const koaPath = (path: string): string => path.replace(/\{([^}]+)\}/g, ":$1");

/**
 * The dispatcher of a route table. Each path's operations (HEAD, for a GET, with the operation's
 * own HEAD handler) and its refusal of every other method (OPTIONS 204, else 405, both with the
 * table's Allow) are composed once, when the app is built. A literal path (POST /events, GET
 * /inbox) is found by one map lookup of path and method; templates go through a @koa/router built
 * from the table, whose match tests every template's pattern and composes the matched chain on
 * each request. Literal paths win over templates, as OpenAPI matches them (POST /events/ack is not
 * GET /events/{id}). A method the router does not know (PROPFIND) on a known path is a 405 too; an
 * unknown path falls through to the 404.
 */
export function dispatcher(table: readonly Operation[], deps: RouteDeps, keyed: readonly Middleware[]): Middleware {
  const allow = allowedMethods(table);
  const router = new Router({ strict: true, sensitive: true });
  const paths = [...new Set(table.map((op) => op.path))];
  const allowByRoute = new Map<string, string>();
  /** Literal paths: each method's composed chain, and the path's refusal of any other method. */
  const literal = new Map<string, { readonly methods: ReadonlyMap<string, Middleware>; readonly refused: Middleware }>();
  for (const path of paths) {
    const route = koaPath(path);
    const first = routeOf(route);
    const methods = new Map<string, Middleware>();
    for (const op of table) {
      if (op.path !== path) continue;
      const guard = op.scope === null ? [] : op.scope === "any" ? [...keyed] : [...keyed, requireScope(op.scope)];
      const chain = (head: boolean) => compose<Context>([first, ...guard, invoke(op, deps, head)]) as Middleware;
      if (op.method === "GET") methods.set("HEAD", chain(true));
      methods.set(op.method, chain(false));
    }
    const refused = compose<Context>([first, refuse(allow.get(path)!)]) as Middleware;
    if (!path.includes("{")) {
      literal.set(path, { methods, refused });
      continue;
    }
    for (const [method, chain] of methods) router.register(route, [method], chain);
    allowByRoute.set(route, allow.get(path)!);
    router.register(route, router.methods.filter((m) => !methods.has(m)), refused);
  }
  const templates = router.routes() as unknown as Middleware;
  const routes = (ctx: Context, next: Next): Promise<void> => {
    const at = literal.get(ctx.path);
    if (at === undefined) return templates(ctx, next);
    ctx.params = EMPTY as Record<string, string>;
    return (at.methods.get(ctx.method) ?? at.refused)(ctx, next);
  };
  // A method outside the router's list matches no route; the path it asked for still has an Allow.
  const unknownMethod = (ctx: Context, next: Next): Promise<void> => {
    const layer = (ctx as { matched?: Layer[] }).matched?.[0];
    if (!layer) return next();
    const route = String(layer.path);
    ctx.state.route = route;
    if (!decodable(layer.captures(ctx.path))) throw new NotFoundError();
    return refuse(allowByRoute.get(route)!)(ctx, next);
  };
  return compose<Context>([routes, unknownMethod]) as Middleware;
}
