import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { joiDetails } from "../../domain/envelope";
import { ValidationError } from "../../errors";
import { MAX_WAIT_SECONDS } from "../../inbox/wakeups";
import { listEvents, type ListFilter } from "../../store/events/list-events";
import { EVENT_STATUSES, type EventStatus, type KeysetPosition } from "../../store/events/peek-events";
import type { ApiDeps } from "../deps";
import { instant, text } from "./console-params";
import { decodeCursor, encodeCursor, queryFingerprint } from "../cursor";
import { principalOf, requireScope } from "../middleware/auth";
import { subscriptionParam } from "../params";
import { eventView } from "../views/event-view";

/** How often a waiting tail looks for newer events, ms: one indexed probe per second per waiting request. */
export const TAIL_PROBE_MS = 1000;

const listQuery = Joi.object({
  subscription: Joi.string().max(64),
  limit: Joi.number().integer().min(1).max(200).default(50),
  status: Joi.string().valid(...EVENT_STATUSES),
  type: text(128),
  source: text(256),
  tag: Joi.array().items(text(128)).single().max(10),
  since: instant(),
  until: instant(),
  q: text(200),
  cursor: Joi.string().max(512),
  after: Joi.string().max(512),
  wait_seconds: Joi.number().integer().min(0).max(MAX_WAIT_SECONDS).default(0),
})
  .oxor("cursor", "after")
  .unknown(false);

interface ListQuery {
  limit: number;
  status?: EventStatus;
  type?: string;
  source?: string;
  tag?: string[];
  since?: Date;
  until?: Date;
  q?: string;
  cursor?: string;
  after?: string;
  wait_seconds: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * GET /events: a subscription's events newest first, with filters, free text search on payloads
 * (a bounded scan) and cursor pagination; with `after` (a tail_cursor) the events newer than it,
 * oldest first, waiting up to wait_seconds for one (the console's live tail). Read-only.
 */
export function consoleEventRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get("/events", requireScope("inbox:read"), async (ctx: Context) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    const { value, error } = listQuery.validate(ctx.query, { abortEarly: false, convert: true });
    if (error) throw new ValidationError("invalid event list query", joiDetails(error));
    const q = value as ListQuery;
    if (q.since && q.until && q.since >= q.until) throw new ValidationError("invalid event list query", [{ path: "until", message: "until must be after since" }]);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const filter: ListFilter = { status: q.status, type: q.type, source: q.source, tags: q.tag, since: q.since, until: q.until, q: q.q };
    const fingerprint = queryFingerprint(["list", ctx.query.subscription ?? "default", q.status ?? null, q.type ?? null, q.source ?? null, q.tag ?? null, q.since ?? null, q.until ?? null, q.q ?? null]);
    const base = { tenantId: principal.tenantId, subscriptionId, limit: q.limit, filter };
    if (q.after === undefined) {
      const from = q.cursor === undefined ? undefined : decodeCursor(q.cursor, fingerprint);
      const { events, next } = await listEvents(deps.db.prisma, { ...base, direction: "older", from });
      // The tail starts at the newest event of a first page, or at the start of the filter's window.
      const newest = from === undefined && events[0] ? { receivedAt: new Date(events[0].received_at), id: events[0].id } : null;
      ctx.body = {
        data: events.map(eventView),
        next_cursor: next ? encodeCursor(next, fingerprint) : null,
        tail_cursor: from === undefined ? encodeCursor(newest ?? { receivedAt: new Date(0), id: `evt_${"0".repeat(26)}` }, fingerprint) : null,
      };
      return;
    }
    let from: KeysetPosition = decodeCursor(q.after, fingerprint);
    const read = async () => {
      const r = await listEvents(deps.db.prisma, { ...base, direction: "newer", from });
      const last = r.events[r.events.length - 1];
      if (last) from = { receivedAt: new Date(last.received_at), id: last.id };
      else if (r.next) from = r.next;
      return r;
    };
    let result = await read();
    if (result.events.length === 0 && q.wait_seconds > 0) {
      // A long poll: one slot of the key's and tenant's long-poll quota, one indexed probe a second.
      const release = deps.longPolls.acquire(principal.keyId, principal.tenantId);
      const gone = new AbortController();
      const onClose = () => gone.abort();
      ctx.res.once("close", onClose);
      try {
        const deadline = Date.now() + q.wait_seconds * 1000;
        while (result.events.length === 0 && Date.now() < deadline && !gone.signal.aborted && !deps.wakeups.isClosed) {
          await sleep(Math.min(TAIL_PROBE_MS, deadline - Date.now()), gone.signal);
          if (!gone.signal.aborted) result = await read();
        }
      } finally {
        ctx.res.off("close", onClose);
        release();
      }
    }
    ctx.body = { data: result.events.map(eventView), next_cursor: null, tail_cursor: encodeCursor(from, fingerprint) };
  });
  return router;
}
