import { Type } from "@sinclair/typebox";
import { NotFoundError, ValidationError } from "../../errors";
import { LIST_SCAN_LIMIT, listEventIds } from "../../store/events/list-events";
import { EVENT_STATUSES } from "../../store/events/peek-events";
import { BULK_CHANGE_LIMIT, redriveDead, redriveDeadEvents, replayEvents } from "../../store/events/replay-events";
import { STATS_BUCKET_SECONDS, STATS_CHART_SCAN_LIMIT, STATS_COUNT_LIMIT, subscriptionStats } from "../../store/events/subscription-stats";
import { resolveSubscription } from "../../store/subscriptions";
import { operation, type RouteDeps } from "../contract/operation";
import { SubscriptionName } from "../contract/schemas";
import { decodeCursor, encodeCursor, queryFingerprint } from "../cursor";
import { principalOf } from "../middleware/auth";
import { instantField, RANGE_RULES, range, text } from "./console-params";

/*
 * POST /subscriptions/{name}/replay, POST /subscriptions/{name}/redrive, GET /subscriptions/{name}/stats:
 * bulk changes of one subscription's deliveries (bounded per call) and its backlog in bounded
 * counts; GET /key: the calling key's id and scopes.
 */

const BODY_BYTES = 16 * 1024;
const bodyLimit = () => BODY_BYTES;

const nameParams = Type.Object({ name: { ...SubscriptionName, description: "A subscription name; an unknown one is 404." } });
const noQuery = Type.Object({}, { additionalProperties: false });

/** The tenant's subscription of the path, or 404 (also for another tenant's). */
async function subscriptionOf(deps: RouteDeps, tenantId: string, name: string): Promise<number> {
  const id = await resolveSubscription(deps.db.prisma, tenantId, name);
  if (id === null) throw new NotFoundError("subscription");
  return id;
}

const bulkResult = (field: "replayed" | "redriven", description: string) =>
  Type.Object(
    {
      [field]: Type.Integer({ minimum: 0, description }),
      has_more: Type.Boolean({ description: `More matched than ${BULK_CHANGE_LIMIT}, the most one call changes: call again for the next batch` }),
    },
    { additionalProperties: false },
  );

const ReplayBody = Type.Object(
  { since: instantField("Inclusive start of received_at"), until: instantField("Exclusive end of received_at") },
  { additionalProperties: false },
);

const RedriveBody = Type.Object(
  {
    type: Type.Optional(text(128, "Only events of this type")),
    source: Type.Optional(text(256, "Only events from this source")),
    tags: Type.Optional(Type.Array(text(128, "A tag"), { maxItems: 10, description: "Only events carrying every one of these tags" })),
    since: Type.Optional(instantField("Inclusive start of received_at")),
    until: Type.Optional(instantField("Exclusive end of received_at")),
    q: Type.Optional(text(200, "Only events whose payload's JSON text contains this text (case-insensitive), as GET /events' q: a bounded scan continued by next_cursor")),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: "With q: next_cursor of the previous call with the same body (the older dead events)" })),
  },
  { additionalProperties: false },
);

const RedriveResult = Type.Object(
  {
    redriven: Type.Integer({ minimum: 0, description: "Dead deliveries made pending" }),
    has_more: Type.Boolean({
      description: `Without q: more matched than ${BULK_CHANGE_LIMIT}, the most one call changes; call again with the same body. With q: the scan stopped at its bound; call again with cursor = next_cursor`,
    }),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: "With q and has_more: pass as cursor to examine the older dead events; otherwise null" }),
  },
  { additionalProperties: false },
);

const INVALID_REDRIVE = "invalid redrive body";

export const replaySubscriptionOperation = operation({
  id: "replaySubscription",
  method: "POST",
  path: "/subscriptions/{name}/replay",
  tag: "subscriptions",
  scope: "events:ack",
  summary: "Deliver again a subscription's events received in a time range",
  description:
    "The acknowledged and dead deliveries of the subscription whose events were received in [since, until) become pending again with a fresh delivery budget " +
    `(delivery_count 0); pending and leased ones are left as they are. At most ${BULK_CHANGE_LIMIT} per call (has_more: call again). Scope events:ack.`,
  params: nameParams,
  query: noQuery,
  body: { schema: ReplayBody, required: true, limit: bodyLimit },
  responses: { 200: { description: "How many were replayed", schema: bulkResult("replayed", "Deliveries made pending") } },
  rules: RANGE_RULES,
  handler: (deps) => async (ctx, { params, body }) => {
    const principal = principalOf(ctx);
    const { since, until } = range(body, "invalid replay body");
    const subscription = await subscriptionOf(deps, principal.tenantId, params.name);
    const r = await replayEvents(deps.db.prisma, principal.tenantId, subscription, since!, until!);
    if (r.changed > 0) deps.wakeups.wakeTenant(principal.tenantId, null, r.changed);
    ctx.body = { replayed: r.changed, has_more: r.hasMore };
  },
});

export const redriveSubscriptionOperation = operation({
  id: "redriveSubscription",
  method: "POST",
  path: "/subscriptions/{name}/redrive",
  tag: "subscriptions",
  scope: "events:ack",
  summary: "Redrive every dead event of a subscription that matches a filter",
  description:
    `The dead deliveries matching every given field become pending again (delivery_count 0). An empty body redrives every dead event. Without q, at most ${BULK_CHANGE_LIMIT} per call ` +
    "(has_more: call again with the same body). With q (a case-insensitive substring of the payload's JSON text, as in GET /events) the call examines the dead events the way a " +
    `GET /events?status=dead page with the same filters does, newest first, at most ${LIST_SCAN_LIMIT} of them, and redrives those that match; has_more and next_cursor say the scan stopped ` +
    "at its bound: call again with cursor = next_cursor for the older ones. Scope events:ack.",
  params: nameParams,
  query: noQuery,
  body: { schema: RedriveBody, required: false, limit: bodyLimit },
  responses: { 200: { description: "How many were redriven", schema: RedriveResult } },
  errors: { 400: ["invalid_cursor"] },
  rules: [
    ...RANGE_RULES,
    "cursor is given only with q (400 validation_failed)",
    "cursor is a next_cursor this operation answered for the same subscription and filters (400 invalid_cursor)",
  ],
  handler: (deps) => async (ctx, { params, body }) => {
    const principal = principalOf(ctx);
    const b = body ?? {};
    const { since, until } = range(b, INVALID_REDRIVE);
    if (b.cursor !== undefined && b.q === undefined) throw new ValidationError(INVALID_REDRIVE, [{ path: "cursor", message: "cursor is given only with q" }]);
    const subscription = await subscriptionOf(deps, principal.tenantId, params.name);
    if (b.q === undefined) {
      const r = await redriveDead(deps.db.prisma, principal.tenantId, subscription, { type: b.type, source: b.source, tags: b.tags, since, until });
      if (r.changed > 0) deps.wakeups.wakeTenant(principal.tenantId, null, r.changed);
      ctx.body = { redriven: r.changed, has_more: r.hasMore, next_cursor: null };
      return;
    }
    // The listing's own scan (GET /events?status=dead with these filters), so the search means here
    // what it means on the page. One call changes at most BULK_CHANGE_LIMIT; the scan's window
    // (LIST_SCAN_LIMIT) is smaller, and next_cursor continues after the last row either way.
    const fingerprint = queryFingerprint(["redrive", params.name, b.type ?? null, b.source ?? null, b.tags ?? null, since ?? null, until ?? null, b.q]);
    const from = b.cursor === undefined ? undefined : decodeCursor(b.cursor, fingerprint);
    const filter = { status: "dead" as const, type: b.type, source: b.source, tags: b.tags, since, until, q: b.q };
    const { ids, next } = await listEventIds(deps.db.prisma, { tenantId: principal.tenantId, subscriptionId: subscription, limit: BULK_CHANGE_LIMIT, filter, direction: "older", from });
    const changed = await redriveDeadEvents(deps.db.prisma, principal.tenantId, subscription, ids);
    if (changed > 0) deps.wakeups.wakeTenant(principal.tenantId, null, changed);
    ctx.body = { redriven: changed, has_more: next !== null, next_cursor: next ? encodeCursor(next, fingerprint) : null };
  },
});

const BoundedCount = Type.Object(
  { count: Type.Integer({ minimum: 0 }), exact: Type.Boolean({ description: `false: the count stopped at count_limit (${STATS_COUNT_LIMIT}); the true number is at least count` }) },
  { additionalProperties: false },
);

const StatsSchema = Type.Object(
  {
    counts: Type.Object(Object.fromEntries(EVENT_STATUSES.map((s) => [s, BoundedCount])), { additionalProperties: false }),
    count_limit: Type.Integer(),
    oldest_pending_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
    oldest_pending_age_seconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    bucket_seconds: Type.Integer(),
    buckets: Type.Array(
      Type.Object(
        { start: Type.String({ format: "date-time" }), received: Type.Integer({ minimum: 0 }), backlog: Type.Integer({ minimum: 0 }), complete: Type.Boolean() },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const noStore = { "Cache-Control": { description: "no-store: per caller and per moment", required: true, schema: { const: "no-store" } } };

export const subscriptionStatsOperation = operation({
  id: "subscriptionStats",
  method: "GET",
  path: "/subscriptions/{name}/stats",
  tag: "subscriptions",
  scope: "inbox:read",
  summary: "A subscription's backlog: bounded counts, oldest pending age, the last hour in buckets",
  description:
    `Counts per status stop at ${STATS_COUNT_LIMIT} (exact: false beyond it; never a COUNT over the table). The chart covers the last hour in ${STATS_BUCKET_SECONDS / 60}-minute buckets: ` +
    `received counts the subscription's events received in the bucket, backlog those of them still pending or leased; at most ${STATS_CHART_SCAN_LIMIT} rows per status are read, ` +
    "newest first, and buckets older than that reach are complete: false (lower bounds). Scope inbox:read.",
  params: nameParams,
  query: noQuery,
  responses: { 200: { description: "The statistics", schema: StatsSchema, headers: noStore } },
  handler: (deps) => async (ctx, { params }) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    const subscription = await subscriptionOf(deps, principal.tenantId, params.name);
    const s = await subscriptionStats(deps.db.prisma, principal.tenantId, subscription);
    ctx.body = {
      counts: s.counts,
      count_limit: STATS_COUNT_LIMIT,
      oldest_pending_at: s.oldestPendingAt?.toISOString() ?? null,
      oldest_pending_age_seconds: s.oldestPendingAt ? Math.max(0, Math.round((s.now.getTime() - s.oldestPendingAt.getTime()) / 1000)) : null,
      bucket_seconds: STATS_BUCKET_SECONDS,
      buckets: s.buckets.map((b) => ({ start: b.start.toISOString(), received: b.received, backlog: b.backlog, complete: b.complete })),
    };
  },
});

/** GET /key: the calling key's id and scopes, so a client offers only what the key may do. */
export const getKeyOperation = operation({
  id: "getKey",
  method: "GET",
  path: "/key",
  tag: "operations",
  scope: "any",
  summary: "The calling API key: its id and scopes",
  description: "Lets a client offer only what the key may do. Any valid key, whatever its scopes.",
  query: noQuery,
  responses: {
    200: {
      description: "The key",
      schema: Type.Object({ id: Type.String(), scopes: Type.Array(Type.String()) }, { additionalProperties: false }),
      headers: noStore,
    },
  },
  handler: () => (ctx) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    ctx.body = { id: principal.keyId, scopes: [...principal.scopes].sort() };
  },
});
