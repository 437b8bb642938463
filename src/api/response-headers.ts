import type { Context } from "koa";

/**
 * Response headers a request collects on its way in (its X-Request-Id, the rate-limit headers),
 * written together when it is answered. node's setHeader checks, lower-cases and stores each
 * header on its own, about 0.2 µs apiece on this API's hot path; a 202 of POST /events hands them
 * all to one writeHead as a flat list instead (respondJson, the route table's response path for
 * every JSON answer). Every other response (errors, text, HEAD) gets them through setHeader just
 * before Koa writes it (applyHeaders, from the request context).
 */
const PENDING = Symbol("triggers.pendingHeaders");

type Carrier = { [PENDING]?: string[] };

/** Adds a header to the response; adding a name (spelled the same) again replaces its value. */
export function addHeader(ctx: Context, name: string, value: string): void {
  const list = ((ctx as Carrier)[PENDING] ??= []);
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === name) {
      list[i + 1] = value;
      return;
    }
  }
  list.push(name, value);
}

/** The value `name` (spelled the same) was added with, or "". */
export function addedHeader(ctx: Context, name: string): string {
  const list = (ctx as Carrier)[PENDING];
  if (list) for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1]!;
  return "";
}

/** The added headers (name, value, ...), taken off the request. */
function takeHeaders(ctx: Context): string[] | undefined {
  const list = (ctx as Carrier)[PENDING];
  (ctx as Carrier)[PENDING] = undefined;
  return list;
}

/** Moves the added headers onto the response (setHeader), unless it is already written. */
export function applyHeaders(ctx: Context): void {
  const list = takeHeaders(ctx);
  if (!list) return;
  const res = ctx.res;
  if (res.headersSent) return;
  for (let i = 0; i < list.length; i += 2) res.setHeader(list[i]!, list[i + 1]!);
}

const REPLY = Symbol("reply");
interface Reply {
  readonly status: number;
  readonly body: object;
  readonly mediaType: string | undefined;
}

/**
 * A handler's JSON answer, handed to the dispatcher's response path (respondJson) as it is:
 * the same answer as setting ctx.status and ctx.body, without Koa's body and type setters, which
 * cost POST /events more than the rest of its response path. Read back with takeReply.
 */
export function reply(ctx: Context, status: number, body: object, mediaType?: string): void {
  (ctx as unknown as Record<symbol, Reply>)[REPLY] = { status, body, mediaType };
}

/** The answer a handler gave with reply, if it did. */
export function takeReply(ctx: Context): Reply | undefined {
  return (ctx as unknown as Record<symbol, Reply | undefined>)[REPLY];
}

/**
 * Answers `status` with `body` as JSON (the Content-Type Koa gives an object body) and the added
 * headers, in one writeHead, bypassing Koa's response writer. ctx.status is set too, for the log
 * line and metrics.
 */
export function respondJson(ctx: Context, status: number, body: unknown, mediaType = "application/json"): void {
  const text = JSON.stringify(body);
  const list = takeHeaders(ctx) ?? [];
  list.push("Content-Type", `${mediaType}; charset=utf-8`, "Content-Length", String(Buffer.byteLength(text)));
  ctx.status = status;
  ctx.respond = false;
  // As Koa's own writer: a client that went away gets nothing written (and no error on the response).
  if (!ctx.writable) return;
  ctx.res.writeHead(status, list);
  ctx.res.end(text);
}
