import Router from "@koa/router";
import type { Context } from "koa";
import { CE_BATCH, CE_STRUCTURED, isBinaryMode, isJsonMediaType, parseBatch, parseBinary, parseStructured, toCloudEvent, type ParsedCloudEvent } from "../../domain/cloudevents";
import { checkBatchItem, MAX_BATCH_EVENTS, parseEnvelope, parseIdempotencyKey, type EventEnvelope } from "../../domain/envelope";
import { itemError, NotFoundError, ValidationError, type AppError, type ErrorDetail } from "../../errors";
import { acceptEvents, type AcceptInput } from "../../ingest/accept-events";
import { checkSchemas } from "../../schemas/check-events";
import { getEvent } from "../../store/events/get-event";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import type { DeliveryBudget } from "../middleware/delivery-budget";
import { readJsonBody, readJsonBodyWithBytes, readRawBody } from "../middleware/json-body";
import { eventIdParam, subscriptionParam } from "../params";
import { addHeader, respondJson } from "../response-headers";
import { deliveryView, eventView } from "../views/event-view";

/**
 * The events of a batch body (BATCH_BODY_SCHEMA): `{"events":[…]}` with no other field, or the
 * bare array of 1 to MAX_BATCH_EVENTS events; 400 otherwise.
 */
function batchEvents(body: unknown): unknown[] {
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  if (isObject) {
    const extra = Object.keys(body).filter((k) => k !== "events");
    if (extra.length > 0) throw new ValidationError("the batch is invalid", extra.map((k) => ({ path: k, message: `"${k}" is not allowed` })));
  }
  const events = isObject ? (body as { events?: unknown }).events : body;
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_BATCH_EVENTS) {
    throw new ValidationError("the batch is invalid", [{ path: "events", message: `must be an array of 1 to ${MAX_BATCH_EVENTS} events` }]);
  }
  return events;
}

/** A CloudEvent of POST /events: binary mode (`ce-*` headers, the body is the data) or structured mode; 400 naming the attribute. */
async function readCloudEvent(ctx: Context, limit: number): Promise<ParsedCloudEvent> {
  let result;
  if (isBinaryMode(ctx.headers)) {
    const contentType = ctx.headers["content-type"] || undefined;
    if (contentType !== undefined && isJsonMediaType(contentType)) {
      const body = await readJsonBodyWithBytes(ctx, limit, { optional: true });
      result = parseBinary(ctx.headers, { contentType, bytes: body?.bytes ?? Buffer.alloc(0), ...(body ? { json: { value: body.value } } : {}) });
    } else {
      result = parseBinary(ctx.headers, { contentType, bytes: await readRawBody(ctx, limit) });
    }
  } else {
    result = parseStructured((await readJsonBodyWithBytes(ctx, limit))?.value);
  }
  if (!result.ok) throw new ValidationError("the CloudEvent is invalid", result.details);
  return result.value;
}

/** The schema versions of validated events (a 422 when one does not match its type's schema). */
function schemaVersionsOf(deps: ApiDeps, tenantId: string, envelopes: readonly EventEnvelope[], batch: boolean) {
  return checkSchemas(deps.schemas, tenantId, envelopes, batch);
}

/** POST /events: one event, 202 once SQS has it (and the tenant's delivery-rows budget covers it). */
export function postEvent(deps: ApiDeps, budget: DeliveryBudget) {
  return async function postEvent(ctx: Context): Promise<void> {
    const principal = principalOf(ctx);
    let idempotencyKey = parseIdempotencyKey(ctx.headers["idempotency-key"]);
    let envelope: EventEnvelope;
    let rawBody: Buffer | undefined;
    if (isBinaryMode(ctx.headers) || (ctx.headers["content-type"] !== "application/json" && ctx.is(CE_STRUCTURED))) {
      const ce = await readCloudEvent(ctx, deps.config.limits.maxEventBytes);
      envelope = ce.envelope;
      // The spec: source and id identify an event; an explicit Idempotency-Key takes precedence.
      idempotencyKey ??= ce.derivedKey;
    } else {
      const body = await readJsonBodyWithBytes(ctx, deps.config.limits.maxEventBytes);
      envelope = parseEnvelope(body?.value);
      rawBody = body?.bytes;
    }
    const checked = schemaVersionsOf(deps, principal.tenantId, [envelope], false);
    const [schemaVersion] = Array.isArray(checked) ? checked : await checked;
    const charged = budget.charge(ctx, principal, 1);
    if (charged) await charged;
    const [outcome] = await acceptEvents(deps.accept, principal.tenantId, [{ envelope, idempotencyKey, rawBody, ...(schemaVersion === undefined ? {} : { schemaVersion }) }]);
    const a = outcome!;
    if (!a.ok) throw a.error;
    addHeader(ctx, "Location", `/events/${a.id}`);
    if (a.replayed) addHeader(ctx, "Idempotent-Replayed", "true");
    if (a.pending) addHeader(ctx, "Idempotency-Pending", "true");
    respondJson(ctx, 202, { id: a.id, status: a.status, received_at: a.received_at });
  };
}

/** POST /events, POST /events/batch, GET /events/{id}. */
export function eventRoutes(deps: ApiDeps, budget: DeliveryBudget): Router {
  const router = new Router();

  // Requests reach this handler through createApp's direct ingest chain (same auth, limiter and
  // scope); the route stays registered so the path's Allow list and 405 answers know it.
  router.post("/events", requireScope("events:write"), postEvent(deps, budget));

  router.post("/events/batch", requireScope("events:write"), async (ctx) => {
    const principal = principalOf(ctx);
    const body = await readJsonBody(ctx, deps.config.limits.maxEventBytes * 4);
    const details: ErrorDetail[] = [];
    let inputs: Array<AcceptInput | null>;
    if (ctx.is(CE_BATCH)) {
      // CloudEvents batch mode: each event's idempotency key is derived from its source and id.
      const parsed = parseBatch(body, MAX_BATCH_EVENTS);
      if (!parsed.ok) throw new ValidationError("some events in the batch are invalid; none was accepted", parsed.details);
      inputs = parsed.events.map((e) => ({ envelope: e.envelope, idempotencyKey: e.derivedKey }));
    } else {
      inputs = batchEvents(body).map((item: unknown, index) => {
        const checked = checkBatchItem(item, index);
        if (!checked.ok) {
          details.push(...checked.details.map((d) => ({ ...d, path: `events.${index}${d.path ? `.${d.path}` : ""}` })));
          return null;
        }
        return { envelope: checked.value, idempotencyKey: checked.idempotencyKey };
      });
    }
    const keys = inputs.flatMap((i) => (i?.idempotencyKey ? [i.idempotencyKey] : []));
    if (new Set(keys).size !== keys.length) details.push({ path: "events", message: "idempotency keys (a CloudEvent's source and id) must be unique within a batch" });
    if (details.length > 0) throw new ValidationError("some events in the batch are invalid; none was accepted", details);
    const valid = inputs.filter((i) => i !== null);
    const checked = schemaVersionsOf(deps, principal.tenantId, valid.map((i) => i.envelope), true);
    const versions = Array.isArray(checked) ? checked : await checked;
    const events = valid.map((i, index) => (versions[index] === undefined ? i : { ...i, schemaVersion: versions[index] }));
    // The whole batch is charged, or refused, at once.
    const charged = budget.charge(ctx, principal, events.length);
    if (charged) await charged;
    const outcomes = await acceptEvents(deps.accept, principal.tenantId, events);
    if (outcomes.some((o) => o.ok && o.pending)) ctx.set("Idempotency-Pending", "true");
    if (outcomes.every((o) => o.ok)) {
      ctx.status = 202;
      ctx.body = { data: outcomes.map((a) => ({ id: a.id, status: a.status, received_at: a.received_at, replayed: a.replayed })) };
      return;
    }
    // Nothing was accepted and a retry may work: the plain retryable 503 (Retry-After), and
    // enqueue_outcome_unknown when any of the events may be on the queue after all.
    if (outcomes.every((o) => !o.ok && o.retryable)) {
      const errors = outcomes.map((o) => (o as { error: AppError }).error);
      throw errors.find((e) => e.code === "enqueue_outcome_unknown") ?? errors[0]!;
    }
    // Some events are on the queue and some are not: name each one, so a retry resends only the rejected.
    ctx.status = 207;
    if (outcomes.some((o) => !o.ok && o.retryable)) ctx.set("Retry-After", "1");
    ctx.body = {
      data: outcomes.map((o, index) =>
        o.ok
          ? { index, id: o.id, status: o.status, received_at: o.received_at, replayed: o.replayed }
          : { index, status: "rejected", error: itemError(o.error), retryable: o.retryable },
      ),
    };
  });

  router.get("/events/:id", requireScope("inbox:read"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const found = await getEvent(deps.db.prisma, principal.tenantId, id, subscriptionId);
    if (found && ctx.accepts("application/json", CE_STRUCTURED) === CE_STRUCTURED) {
      // Asked for as a CloudEvent (docs/cloudevents.md): the event alone, without its deliveries.
      ctx.type = CE_STRUCTURED;
      ctx.body = toCloudEvent(found.row);
      return;
    }
    if (found) {
      // The top-level state is the delivery of `subscription` (default `default`); `deliveries` lists every one.
      ctx.body = { ...eventView(found.row), deliveries: found.deliveries.map(deliveryView) };
      return;
    }
    // Accepted by this API but still on its way through SQS to the database.
    if (await deps.receipts.wasAccepted(principal.tenantId, id)) {
      ctx.body = { id, status: "queued" };
      return;
    }
    throw new NotFoundError("event");
  });

  return router;
}
