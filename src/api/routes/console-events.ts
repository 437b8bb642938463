import { Type } from "@sinclair/typebox";
import { ValidationError } from "../../errors";
import { MAX_WAIT_SECONDS } from "../../inbox/wakeups";
import { LIST_SCAN_LIMIT, listEvents, type ListFilter } from "../../store/events/list-events";
import type { KeysetPosition } from "../../store/events/peek-events";
import { operation } from "../contract/operation";
import { EventStatus, EventViewSchema } from "../contract/schemas";
import { decodeCursor, encodeCursor, queryFingerprint } from "../cursor";
import { principalOf } from "../middleware/auth";
import { SUBSCRIPTION_RULE, subscriptionField, subscriptionId } from "../params";
import { eventView } from "../views/event-view";
import { instantField, RANGE_RULES, range, text } from "./console-params";

/** How often a waiting tail looks for newer events, ms: one indexed probe per second per waiting request. */
export const TAIL_PROBE_MS = 1000;

const ListQuery = Type.Object(
  {
    subscription: subscriptionField,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50, description: "Events per page" })),
    status: Type.Optional({ ...EventStatus, description: "Only events in this status in the subscription" }),
    type: Type.Optional(text(128, "Only events of this type")),
    source: Type.Optional(text(256, "Only events from this source")),
    // Repeat `tag` to require several tags; a single value arrives as a string.
    tag: Type.Optional(Type.Array(text(128, "A tag"), { maxItems: 10, description: "Only events carrying this tag; repeat to require several (at most 10)" })),
    since: Type.Optional(instantField("Only events received at or after this time")),
    until: Type.Optional(instantField("Only events received before this time")),
    q: Type.Optional(text(200, "Only events whose payload's JSON text contains this text (case-insensitive; bounded scan)")),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: "next_cursor of the previous page (bound to the same filters)" })),
    after: Type.Optional(Type.String({ maxLength: 512, description: "A tail_cursor: the events newer than it, oldest first (not with cursor)" })),
    wait_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0, description: "With after: seconds to wait for a newer event when there is none (0 = answer at once)" })),
  },
  { additionalProperties: false },
);

const EventListSchema = Type.Object(
  {
    data: Type.Array(EventViewSchema),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for older events; null on the last page" }),
    tail_cursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as after for newer events (null on pages read with cursor)" }),
  },
  { additionalProperties: false },
);

const INVALID = "invalid event list query";

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * GET /events: a subscription's events newest first, with filters, free text search on payloads
 * (a bounded scan) and cursor pagination; with `after` (a tail_cursor) the events newer than it,
 * oldest first, waiting up to wait_seconds for one (the console's live tail). Read-only.
 */
export const listEventsOperation = operation({
  id: "listEvents",
  method: "GET",
  path: "/events",
  tag: "events",
  scope: "inbox:read",
  summary: "List a subscription's events, newest first, with filters and payload search",
  description:
    "One page of the events of `subscription` (default `default`) with their delivery state in it, newest first, and an opaque next_cursor for older ones. " +
    "status and the received_at range (since, until) are served by an index. type, source, tag and q (a case-insensitive substring of the payload's JSON text) " +
    `are checked over a bounded scan: at most ${LIST_SCAN_LIMIT} events per status are examined per page, so a short (even empty) page with a next_cursor means "keep going". ` +
    "Nothing is counted. tail_cursor (first page only) marks the newest event: pass it as `after` to get the events newer than it, oldest first, " +
    "and with wait_seconds the request waits up to that long for one (a long poll that counts against the long-poll quota; it probes once a second). Scope inbox:read. " +
    "HEAD validates the query and answers the headers, reading nothing and never waiting.",
  query: ListQuery,
  responses: { 200: { description: "One page", schema: EventListSchema, headers: { "Cache-Control": { description: "no-store: listings are per caller and per moment", required: true, schema: { const: "no-store" } } } } },
  errors: { 400: ["invalid_cursor"], 404: ["not_found"], 429: ["long_poll_quota_exceeded"] },
  rules: [
    SUBSCRIPTION_RULE,
    ...RANGE_RULES,
    "cursor and after are not both given (400 validation_failed)",
    "cursor is a next_cursor, and after a tail_cursor, this API answered for the same subscription and filters (400 invalid_cursor)",
  ],
  handler: (deps) => async (ctx, { query: q }) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    if (q.cursor !== undefined && q.after !== undefined) throw new ValidationError(INVALID, [{ path: "after", message: "cursor and after cannot be given together" }]);
    const { since, until } = range(q, INVALID);
    const subscription = await subscriptionId(deps, principal.tenantId, q.subscription);
    const filter: ListFilter = { status: q.status, type: q.type, source: q.source, tags: q.tag, since, until, q: q.q };
    const fingerprint = queryFingerprint(["list", q.subscription ?? "default", q.status ?? null, q.type ?? null, q.source ?? null, q.tag ?? null, since ?? null, until ?? null, q.q ?? null]);
    const base = { tenantId: principal.tenantId, subscriptionId: subscription, limit: q.limit ?? 50, filter };
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
    const waitSeconds = q.wait_seconds ?? 0;
    if (result.events.length === 0 && waitSeconds > 0) {
      // A long poll: one slot of the key's and tenant's long-poll quota, one indexed probe a second.
      const release = deps.longPolls.acquire(principal.keyId, principal.tenantId);
      const gone = new AbortController();
      const onClose = () => gone.abort();
      ctx.res.once("close", onClose);
      try {
        const deadline = Date.now() + waitSeconds * 1000;
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
  },
  // HEAD never reads events nor waits: the query is validated (by the table) and the headers answered.
  head: () => (ctx) => {
    ctx.set("Cache-Control", "no-store");
    ctx.status = 200;
    ctx.type = "application/json";
  },
});
