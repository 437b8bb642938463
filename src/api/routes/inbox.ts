import { Type, type Static } from "@sinclair/typebox";
import type { Context } from "koa";
import { CE_BATCH, toCloudEvent } from "../../domain/cloudevents";
import { ValidationError } from "../../errors";
import type { InboxFilter } from "../../store/events/inbox-filter";
import { peekEvents } from "../../store/events/peek-events";
import { MAX_WAIT_SECONDS } from "../../inbox/wakeups";
import { InboxService } from "../../inbox/inbox-service";
import { operation, type RouteDeps } from "../contract/operation";
import { CloudEventBatchOut, EventStatus, InboxLeaseSchema, InboxPageSchema, Instant } from "../contract/schemas";
import { principalOf } from "../middleware/auth";
import { decodeCursor, encodeCursor, queryFingerprint } from "../cursor";
import { MAX_VISIBILITY_SECONDS, SUBSCRIPTION_RULE, subscriptionField, subscriptionId } from "../params";
import { eventView, leasedEventView } from "../views/event-view";

/** Most events one GET /inbox answers, and the default. */
const MAX_LIMIT = 500;
const DEFAULT_LIMIT = 50;

/** Postgres text cannot hold NUL: the pattern refuses it with a 400 instead of failing in the query. */
const text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: "^[^\\u0000]*$", description });

/** The filters and page size both modes take. */
const common = {
  subscription: subscriptionField,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT, description: "Events per answer" })),
  type: Type.Optional(text(128, "Only events of this type")),
  source: Type.Optional(text(256, "Only events from this source")),
  // Repeat `tag` to require several tags; a single value arrives as a string.
  tag: Type.Optional(Type.Array(text(128, "A tag"), { maxItems: 10, description: "Only events carrying this tag; repeat to require several (at most 10)" })),
  since: Type.Optional({ ...Instant, description: "Only events received at or after this time (RFC 3339 with seconds and an offset; years 1 to 9999)" }),
  until: Type.Optional({ ...Instant, description: "Only events received before this time (RFC 3339 with seconds and an offset; years 1 to 9999)" }),
  format: Type.Optional(
    Type.Union([Type.Literal("json"), Type.Literal("cloudevents")], {
      default: "json",
      description:
        "cloudevents: answer a CloudEvents batch (application/cloudevents-batch+json), as Accept: application/cloudevents-batch+json does; has_more and next_cursor are then the Triggers-Has-More and Triggers-Next-Cursor headers",
    }),
  ),
};

/** True when the caller asked for the answer as a CloudEvents batch (docs/cloudevents.md). */
function wantsCloudEvents(ctx: Context, format: "json" | "cloudevents" | undefined): boolean {
  if (format !== undefined) return format === "cloudevents";
  return ctx.accepts("application/json", CE_BATCH) === CE_BATCH;
}

/** Lease mode (the default): what leasing takes. */
const LeaseQuery = Type.Object(
  {
    mode: Type.Optional(Type.Literal("lease", { description: "lease (the default) leases events" })),
    visibility_timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_VISIBILITY_SECONDS, description: "Lease length, seconds (default INBOX_VISIBILITY_SECONDS, 30)" })),
    wait_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0, description: "Long polling: seconds to wait for an event when none is deliverable (0 = answer at once)" })),
    ...common,
  },
  { additionalProperties: false, title: "LeaseQuery" },
);

/** Peek mode: a read-only page. */
const PeekQuery = Type.Object(
  {
    mode: Type.Literal("peek", { description: "peek browses read-only" }),
    status: Type.Optional({ ...EventStatus, description: "Only events in this status" }),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: "next_cursor of the previous page (bound to the same status and filters)" })),
    ...common,
  },
  { additionalProperties: false, title: "PeekQuery" },
);

type CommonQuery = Static<typeof LeaseQuery> | Static<typeof PeekQuery>;

const INSTANT_MIN = Date.parse("0001-01-01T00:00:00.000Z");
const INSTANT_MAX = Date.parse("9999-12-31T23:59:59.999Z");
const INSTANT_RULE = "since and until, read in UTC, are in the years 1 to 9999: the pattern bounds the year as written, an offset can move it past a bound (400 validation_failed)";

/** A since/until the schema allowed, as a Date in the years 1–9999 (UTC). */
function instant(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (!(t >= INSTANT_MIN && t <= INSTANT_MAX)) throw new ValidationError("invalid inbox query", [{ path: name, message: `"${name}" must be in the years 1 to 9999` }]);
  return new Date(t);
}

function filterOf(q: CommonQuery): InboxFilter {
  return { type: q.type, source: q.source, tags: q.tag, since: instant(q.since, "since"), until: instant(q.until, "until") };
}

/** GET /inbox?mode=peek: a read-only page of the caller's events, any status, in arrival order. */
async function peek(deps: RouteDeps, ctx: Context, q: Static<typeof PeekQuery>): Promise<void> {
  const principal = principalOf(ctx);
  const subscription = await subscriptionId(deps, principal.tenantId, q.subscription);
  const filter = filterOf(q);
  // The cursor is bound to the status and filters; `limit` may change from page to page.
  const fingerprint = queryFingerprint([q.subscription ?? "default", q.status ?? null, filter.type ?? null, filter.source ?? null, filter.tags ?? null, filter.since ?? null, filter.until ?? null]);
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, fingerprint);
  const { events, next } = await peekEvents(deps.db.prisma, { tenantId: principal.tenantId, subscriptionId: subscription, limit: q.limit ?? DEFAULT_LIMIT, status: q.status, filter, after });
  const cursor = next ? encodeCursor(next, fingerprint) : null;
  if (wantsCloudEvents(ctx, q.format)) {
    if (cursor) ctx.set("Triggers-Next-Cursor", cursor);
    ctx.type = CE_BATCH;
    ctx.body = events.map((e) => toCloudEvent(e));
    return;
  }
  ctx.body = { data: events.map(eventView), next_cursor: cursor };
}

/** Runs `fn` with a signal aborted when the client goes away before its answer is written. */
async function whileConnected<T>(ctx: Context, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const gone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) gone.abort();
  };
  ctx.res.once("close", onClose);
  if (ctx.req.socket?.destroyed) gone.abort();
  try {
    return await fn(gone.signal);
  } finally {
    ctx.res.off("close", onClose);
  }
}

/** GET /inbox (lease mode): asks the inbox service for the caller's deliverable events, waiting up to wait_seconds for one. */
async function lease(deps: RouteDeps, inbox: InboxService, ctx: Context, q: Static<typeof LeaseQuery>): Promise<void> {
  const principal = principalOf(ctx);
  const request = {
    keyId: principal.keyId,
    tenantId: principal.tenantId,
    subscriptionId: await subscriptionId(deps, principal.tenantId, q.subscription),
    filter: filterOf(q),
    limit: q.limit ?? DEFAULT_LIMIT,
    visibilitySeconds: q.visibility_timeout ?? deps.config.inbox.defaultVisibilitySeconds,
    maxDeliveries: deps.config.inbox.maxDeliveries,
  };
  const waitSeconds = q.wait_seconds ?? 0;
  const { events, hasMore } =
    waitSeconds > 0 ? await whileConnected(ctx, (signal) => inbox.lease({ ...request, deadline: Date.now() + waitSeconds * 1000, signal })) : await inbox.lease(request);
  if (wantsCloudEvents(ctx, q.format)) {
    ctx.set("Triggers-Has-More", String(hasMore));
    ctx.type = CE_BATCH;
    ctx.body = events.map((e) => toCloudEvent(e, e));
    return;
  }
  ctx.body = { data: events.map(leasedEventView), has_more: hasMore };
}

/** GET /inbox: leases the caller's deliverable events, or with mode=peek lists them read-only. */
export const getInbox = operation({
  id: "getInbox",
  method: "GET",
  path: "/inbox",
  tag: "inbox",
  scope: "inbox:read",
  summary: "Lease deliverable events, or browse with mode=peek",
  description:
    "Lease mode (default): leases up to `limit` pending or lease-expired events, oldest first, each with a lease_id valid for visibility_timeout seconds " +
    "(the lease's secret: only this answer carries it; peek and GET /events/{id} show a lease's status and expiry, never its id); " +
    "two consumers never receive the same event inside one lease. Answers {data, has_more}. " +
    "With wait_seconds=N (long polling) and nothing deliverable, the request waits up to N seconds for a matching event (woken by the ingest worker's commit, a nack, or a lease expiring), " +
    "then answers as usual: an empty page if nothing came. A client that disconnects while waiting leases nothing; on shutdown waiting requests answer an empty page at once. " +
    "Concurrent long polls are bounded per API key and per tenant (per API process): past either quota the request answers 429 long_poll_quota_exceeded at once, with Retry-After. " +
    "Leases last at most 1 h (3600 s): a consumer that needs longer extends its lease while it works. " +
    "Peek mode (mode=peek): a read-only page in arrival order, any status, with an opaque next_cursor; leases nothing. Answers {data, next_cursor}. " +
    "The query is one of the two modes' parameter sets (LeaseQuery or PeekQuery): visibility_timeout and wait_seconds belong to lease mode, status and cursor to peek mode. " +
    "HEAD validates the query and answers the headers, leasing nothing. " +
    "With format=cloudevents, or Accept: application/cloudevents-batch+json (preferred to application/json) without format, either mode answers a CloudEvents batch (docs/cloudevents.md).",
  query: Type.Union([LeaseQuery, PeekQuery]),
  responses: {
    200: {
      description: "Leased events (lease mode) or one page (peek mode)",
      schema: Type.Union([InboxLeaseSchema, InboxPageSchema]),
      alternatives: { [CE_BATCH]: CloudEventBatchOut },
      headers: {
        "Cache-Control": { description: "no-store: leases and listings are per caller and per moment", required: true, schema: { const: "no-store" } },
        "Triggers-Has-More": { description: "CloudEvents answer of lease mode: whether more events were deliverable", schema: { type: "string", enum: ["true", "false"] } },
        "Triggers-Next-Cursor": { description: "CloudEvents answer of peek mode: the next page's cursor, when there is one", schema: { type: "string" } },
      },
    },
  },
  errors: { 400: ["invalid_cursor"], 404: ["not_found"], 429: ["long_poll_quota_exceeded"] },
  rules: [SUBSCRIPTION_RULE, INSTANT_RULE, "cursor is a next_cursor this API answered for the same subscription, status and filters (400 invalid_cursor)"],
  handler: (deps) => {
    const inbox = new InboxService(deps);
    return async (ctx, { query }) => {
      // Leases and listings are per caller and per moment: never to be stored by a cache.
      ctx.set("Cache-Control", "no-store");
      if (query.mode === "peek") return peek(deps, ctx, query);
      return lease(deps, inbox, ctx, query);
    };
  },
  // HEAD never leases: the query is validated (by the table) and the headers answered.
  head: () => (ctx) => {
    ctx.set("Cache-Control", "no-store");
    ctx.status = 200;
    ctx.type = "application/json";
  },
});
