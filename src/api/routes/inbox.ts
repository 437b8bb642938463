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
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { subscriptionParam } from "./subscription-param";

/** Longest lease, seconds (12 h, the SQS visibility maximum, so clients can reuse their settings). */
export const MAX_VISIBILITY_SECONDS = 43_200;

const common = {
  limit: Joi.number().integer().min(1).max(500).default(50),
  type: Joi.string().min(1).max(128),
  source: Joi.string().min(1).max(256),
  // Repeat `tag` to require several tags; a single value arrives as a string.
  tag: Joi.array().items(Joi.string().min(1).max(128)).single().max(10),
  since: Joi.date().iso(),
  until: Joi.date().iso(),
  // Resolved (and 404'd when unknown) by subscriptionParam.
  subscription: Joi.string().max(64),
};

const leaseQuery = Joi.object({
  mode: Joi.string().valid("lease"),
  visibility_timeout: Joi.number().integer().min(1).max(MAX_VISIBILITY_SECONDS),
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
    if (ctx.query.mode === "peek") {
      const q = validateQuery<CommonQuery & { status?: EventStatus; cursor?: string }>(peekQuery, ctx);
      const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
      const filter = filterOf(q);
      // The cursor is bound to the status and filters; `limit` may change from page to page.
      const fingerprint = queryFingerprint([ctx.query.subscription ?? "default", q.status ?? null, filter.type ?? null, filter.source ?? null, filter.tags ?? null, filter.since ?? null, filter.until ?? null]);
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, fingerprint);
      const { events, next } = await peekEvents(deps.db.prisma, { tenantId: principal.tenantId, subscriptionId, limit: q.limit, status: q.status, filter, after });
      ctx.body = { data: events.map(eventView), next_cursor: next ? encodeCursor(next, fingerprint) : null };
      return;
    }
    const q = validateQuery<CommonQuery & { visibility_timeout?: number }>(leaseQuery, ctx);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const { events, hasMore, dead } = await leaseEvents(deps.db.prisma, {
      tenantId: principal.tenantId,
      subscriptionId,
      limit: q.limit,
      visibilitySeconds: q.visibility_timeout ?? deps.config.inbox.defaultVisibilitySeconds,
      maxDeliveries: deps.config.inbox.maxDeliveries,
      filter: filterOf(q),
    });
    deps.metrics.inboxLeased.inc(events.length);
    if (dead > 0) deps.metrics.inboxDead.inc(dead);
    ctx.body = { data: events.map(eventView), has_more: hasMore };
  });
  return router;
}
