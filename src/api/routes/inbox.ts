import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { ValidationError } from "../../errors";
import { isInstant, joiDetails } from "../../domain/envelope";
import type { InboxFilter } from "../../store/events/inbox-filter";
import { leaseEvents } from "../../store/events/lease-events";
import { EVENT_STATUSES, peekEvents, type EventStatus } from "../../store/events/peek-events";
import { MAX_WAIT_SECONDS } from "../../inbox/wakeups";
import { longPollLease } from "../../inbox/long-poll";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { decodeCursor, encodeCursor, queryFingerprint } from "../cursor";
import { MAX_VISIBILITY_SECONDS, subscriptionParam } from "../params";
import { eventView, leasedEventView } from "../views/event-view";
import { CE_BATCH, toCloudEvent } from "../../domain/cloudevents";

/** Postgres text cannot hold NUL: refused here with a 400 instead of failing in the query. */
const text = (max: number) => Joi.string().min(1).max(max).pattern(/^[^\u0000]*$/).messages({ "string.pattern.base": "{{#label}} must not contain NUL" });
/**
 * An instant as INSTANT_SCHEMA (and /openapi.json) describes it: RFC 3339 with seconds and an
 * offset, so a bare date or a zoneless time is a 400 rather than a guess; years 1–9999 (what
 * ISO 8601 and Postgres agree on without extensions). Answers a Date.
 */
const INSTANT_MIN = Date.parse("0001-01-01T00:00:00.000Z");
const INSTANT_MAX = Date.parse("9999-12-31T23:59:59.999Z");
const instant = () =>
  Joi.string()
    .custom((value: string, helpers) => {
      if (!isInstant(value)) return helpers.error("instant.format");
      const t = Date.parse(value);
      if (!(t >= INSTANT_MIN && t <= INSTANT_MAX)) return helpers.error("instant.range");
      return new Date(t);
    })
    .messages({
      "instant.format": "{{#label}} must be an RFC 3339 date-time with seconds and a UTC offset, e.g. 2026-01-02T03:04:05Z",
      "instant.range": "{{#label}} must be in the years 1 to 9999",
    });

const common = {
  limit: Joi.number().integer().min(1).max(500).default(50),
  type: text(128),
  source: text(256),
  // Repeat `tag` to require several tags; a single value arrives as a string.
  tag: Joi.array().items(text(128)).single().max(10),
  since: instant(),
  until: instant(),
  // Resolved (and 404'd when unknown) by subscriptionParam.
  subscription: Joi.string().max(64),
  // cloudevents: the page as a CloudEvents batch (as Accept: application/cloudevents-batch+json).
  format: Joi.string().valid("json", "cloudevents"),
};

/** True when the caller asked for the page as a CloudEvents batch (docs/cloudevents.md). */
function wantsCloudEvents(ctx: Context): boolean {
  if (ctx.query.format !== undefined) return ctx.query.format === "cloudevents";
  return ctx.accepts("application/json", CE_BATCH) === CE_BATCH;
}

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
      const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
      const filter = filterOf(q);
      // The cursor is bound to the status and filters; `limit` may change from page to page.
      const fingerprint = queryFingerprint([ctx.query.subscription ?? "default", q.status ?? null, filter.type ?? null, filter.source ?? null, filter.tags ?? null, filter.since ?? null, filter.until ?? null]);
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, fingerprint);
      const { events, next } = await peekEvents(deps.db.prisma, { tenantId: principal.tenantId, subscriptionId, limit: q.limit, status: q.status, filter, after });
      const cursor = next ? encodeCursor(next, fingerprint) : null;
      if (wantsCloudEvents(ctx)) {
        if (cursor) ctx.set("Triggers-Next-Cursor", cursor);
        ctx.type = CE_BATCH;
        ctx.body = events.map((e) => toCloudEvent(e));
        return;
      }
      ctx.body = { data: events.map(eventView), next_cursor: cursor };
      return;
    }
    const q = validateQuery<CommonQuery & { visibility_timeout?: number; wait_seconds: number }>(leaseQuery, ctx);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const options = {
      tenantId: principal.tenantId,
      subscriptionId,
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
      q.wait_seconds > 0
        ? await longPollLease(deps, ctx, { keyId: principal.keyId, tenantId: principal.tenantId, subscriptionId, filter: options.filter, limit: q.limit, waitSeconds: q.wait_seconds, lease })
        : await lease();
    if (wantsCloudEvents(ctx)) {
      ctx.set("Triggers-Has-More", String(hasMore));
      ctx.type = CE_BATCH;
      ctx.body = events.map((e) => toCloudEvent(e, e));
      return;
    }
    ctx.body = { data: events.map(leasedEventView), has_more: hasMore };
  });
  return router;
}
