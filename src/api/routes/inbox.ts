import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { ValidationError } from "../../errors";
import { joiDetails } from "../../domain/envelope";
import { decodeCursor, encodeCursor, queryFingerprint } from "../../store/events/cursor";
import { eventView } from "../../store/events/event-row";
import type { InboxFilter } from "../../store/events/inbox-filter";
import { leaseEvents } from "../../store/events/lease-events";
import { EVENT_STATUSES, peekEvents, type EventStatus } from "../../store/events/peek-events";
import { MAX_WAIT_SECONDS } from "../../inbox/wakeups";
import { longPollLease } from "../../inbox/long-poll";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";

/**
 * Longest lease, seconds: 1 h. A lease is a promise that nobody else gets the event, so its length
 * is how long a crashed consumer keeps an event from everyone. Consumers that need longer extend
 * the lease while they work (POST /events/{id}/extend, which the client library's heartbeat does),
 * so a long maximum buys nothing a heartbeat does not, and SQS's 12 h would let one lost consumer
 * stall an event for half a day.
 */
export const MAX_VISIBILITY_SECONDS = 3_600;

/** Postgres text cannot hold NUL: refused here with a 400 instead of failing in the query. */
const text = (max: number) => Joi.string().min(1).max(max).pattern(/^[^\u0000]*$/).messages({ "string.pattern.base": "{{#label}} must not contain NUL" });
/** Years 1–9999 (what ISO 8601 and Postgres agree on without extensions). */
const instant = () =>
  Joi.date().iso().min("0001-01-01T00:00:00.000Z").max("9999-12-31T23:59:59.999Z").messages({
    "date.min": "{{#label}} must be in the years 1 to 9999",
    "date.max": "{{#label}} must be in the years 1 to 9999",
  });

const common = {
  limit: Joi.number().integer().min(1).max(500).default(50),
  type: text(128),
  source: text(256),
  // Repeat `tag` to require several tags; a single value arrives as a string.
  tag: Joi.array().items(text(128)).single().max(10),
  since: instant(),
  until: instant(),
};

const leaseQuery = Joi.object({
  mode: Joi.string().valid("lease"),
  visibility_timeout: Joi.number().integer().min(1).max(MAX_VISIBILITY_SECONDS),
  wait_seconds: Joi.number().integer().min(0).max(MAX_WAIT_SECONDS).default(0),
  ...common,
}).unknown(false);

const peekQuery = Joi.object({
  mode: Joi.string().valid("peek").required(),
  status: Joi.string().valid(...EVENT_STATUSES),
  cursor: Joi.string().max(512),
  ...common,
}).unknown(false);

interface CommonQuery {
  limit: number;
  type?: string;
  source?: string;
  tag?: string[];
  since?: Date;
  until?: Date;
}

function validateQuery<T>(schema: Joi.ObjectSchema, ctx: Context): T {
  const { value, error } = schema.validate(ctx.query, { abortEarly: false, convert: true });
  if (error) throw new ValidationError("invalid inbox query", joiDetails(error));
  return value as T;
}

function filterOf(q: CommonQuery): InboxFilter {
  return { type: q.type, source: q.source, tags: q.tag, since: q.since, until: q.until };
}

/** GET /inbox: leases the caller's deliverable events, or with mode=peek lists them read-only. */
export function inboxRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get("/inbox", requireScope("inbox:read"), async (ctx) => {
    const principal = principalOf(ctx);
    // Leases and listings are per caller and per moment: never to be stored by a cache.
    ctx.set("Cache-Control", "no-store");
    if (ctx.method === "HEAD") {
      // HEAD (which the router serves with this handler) never leases: it validates and answers headers only.
      validateQuery(ctx.query.mode === "peek" ? peekQuery : leaseQuery, ctx);
      ctx.status = 200;
      ctx.type = "application/json";
      return;
    }
    if (ctx.query.mode === "peek") {
      const q = validateQuery<CommonQuery & { status?: EventStatus; cursor?: string }>(peekQuery, ctx);
      const filter = filterOf(q);
      // The cursor is bound to the status and filters; `limit` may change from page to page.
      const fingerprint = queryFingerprint([q.status ?? null, filter.type ?? null, filter.source ?? null, filter.tags ?? null, filter.since ?? null, filter.until ?? null]);
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, fingerprint);
      const { events, next } = await peekEvents(deps.db.prisma, { tenantId: principal.tenantId, limit: q.limit, status: q.status, filter, after });
      ctx.body = { data: events.map(eventView), next_cursor: next ? encodeCursor(next, fingerprint) : null };
      return;
    }
    const q = validateQuery<CommonQuery & { visibility_timeout?: number; wait_seconds: number }>(leaseQuery, ctx);
    const options = {
      tenantId: principal.tenantId,
      limit: q.limit,
      visibilitySeconds: q.visibility_timeout ?? deps.config.inbox.defaultVisibilitySeconds,
      maxDeliveries: deps.config.inbox.maxDeliveries,
      filter: filterOf(q),
    };
    const lease = async () => {
      const result = await leaseEvents(deps.db.prisma, options);
      deps.metrics.inboxLeased.inc(result.events.length);
      if (result.dead > 0) deps.metrics.inboxDead.inc(result.dead);
      // Their expiry makes these events deliverable again: waiters of this process look then.
      const first = result.events[0]?.lease_expires_at;
      if (first) deps.wakeups.dueAt(principal.tenantId, new Date(first));
      return result;
    };
    const { events, hasMore } =
      q.wait_seconds > 0 ? await longPollLease(deps, ctx, { tenantId: principal.tenantId, type: q.type, waitSeconds: q.wait_seconds, lease }) : await lease();
    ctx.body = { data: events.map(eventView), has_more: hasMore };
  });
  return router;
}
