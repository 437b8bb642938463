import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { checkEnvelope, parseEnvelope, parseIdempotencyKey } from "../../domain/envelope";
import { EVENT_ID_PATTERN } from "../../domain/ids";
import { NotFoundError, ValidationError, type ErrorDetail } from "../../errors";
import { acceptEvents } from "../../ingest/accept-events";
import { ackEvent } from "../../store/events/ack-events";
import { eventView } from "../../store/events/event-row";
import { getEvent } from "../../store/events/get-event";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";

/** The event id of a path, or 404 (an id that cannot exist is simply not found). */
export function eventIdParam(ctx: Context): string {
  const id = ctx.params.id;
  if (typeof id !== "string" || !EVENT_ID_PATTERN.test(id)) throw new NotFoundError("event");
  return id;
}

const ackBodySchema = Joi.object({ lease_id: Joi.string().guid() }).unknown(false);

/** POST /events, GET /events/{id}, POST|DELETE /events/{id}/ack. */
export function eventRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const acceptDeps = {
    batcher: deps.batcher,
    idempotency: deps.idempotency,
    onAccepted: (n: number) => deps.metrics.eventsAccepted.inc(n),
    onEnqueueFailed: (n: number) => deps.metrics.enqueueFailures.inc(n),
  };

  router.post("/events", requireScope("events:write"), async (ctx) => {
    const principal = principalOf(ctx);
    const idempotencyKey = parseIdempotencyKey(ctx.headers["idempotency-key"]);
    const envelope = parseEnvelope(await readJsonBody(ctx, deps.config.limits.maxEventBytes));
    const [accepted] = await acceptEvents(acceptDeps, principal.tenantId, [{ envelope, idempotencyKey }]);
    const a = accepted!;
    ctx.status = 202;
    ctx.set("Location", `/events/${a.id}`);
    if (a.replayed) ctx.set("Idempotent-Replayed", "true");
    ctx.body = { id: a.id, status: a.status, received_at: a.received_at };
  });

  router.post("/events/batch", requireScope("events:write"), async (ctx) => {
    const principal = principalOf(ctx);
    const body = await readJsonBody(ctx, deps.config.limits.maxEventBytes * 4);
    const events = (body as { events?: unknown } | null)?.events ?? body;
    if (!Array.isArray(events) || events.length === 0 || events.length > 100) {
      throw new ValidationError("the batch is invalid", [{ path: "events", message: "must be an array of 1 to 100 events" }]);
    }
    const details: ErrorDetail[] = [];
    const inputs = events.map((item: unknown, index) => {
      const { idempotency_key: rawKey, ...rest } = (item !== null && typeof item === "object" ? item : { _: item }) as Record<string, unknown>;
      let idempotencyKey: string | null = null;
      if (rawKey !== undefined) {
        if (typeof rawKey !== "string") {
          details.push({ index, path: `events.${index}.idempotency_key`, message: "must be a string" });
        } else {
          try {
            idempotencyKey = parseIdempotencyKey(rawKey);
          } catch {
            details.push({ index, path: `events.${index}.idempotency_key`, message: "must be 1–255 printable ASCII characters" });
          }
        }
      }
      const checked = checkEnvelope(item !== null && typeof item === "object" && !Array.isArray(item) ? rest : item, index);
      if (!checked.ok) {
        details.push(...checked.details.map((d) => ({ ...d, path: `events.${index}${d.path ? `.${d.path}` : ""}` })));
        return null;
      }
      return { envelope: checked.value, idempotencyKey };
    });
    const keys = inputs.flatMap((i) => (i?.idempotencyKey ? [i.idempotencyKey] : []));
    if (new Set(keys).size !== keys.length) details.push({ path: "events", message: "idempotency keys must be unique within a batch" });
    if (details.length > 0) throw new ValidationError("some events in the batch are invalid; none was accepted", details);
    const accepted = await acceptEvents(acceptDeps, principal.tenantId, inputs.filter((i) => i !== null));
    ctx.status = 202;
    ctx.body = {
      data: accepted.map((a) => ({ id: a.id, status: a.status, received_at: a.received_at, replayed: a.replayed })),
    };
  });

  router.get("/events/:id", requireScope("inbox:read"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const row = await getEvent(deps.db.prisma, principal.tenantId, id);
    if (!row) throw new NotFoundError("event");
    ctx.body = eventView(row);
  });

  const ack = async (ctx: Context) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const body = ctx.method === "POST" ? await readJsonBody(ctx, 4096, { optional: true }) : undefined;
    const { value, error } = ackBodySchema.validate(body ?? {});
    if (error) throw new ValidationError("invalid ack body", [{ path: "lease_id", message: error.message }]);
    const leaseId = (value as { lease_id?: string }).lease_id ?? (typeof ctx.query.lease_id === "string" ? ctx.query.lease_id : undefined);
    if (leaseId !== undefined && Joi.string().guid().validate(leaseId).error) {
      throw new ValidationError("invalid lease_id", [{ path: "lease_id", message: "must be a UUID" }]);
    }
    const acked = await ackEvent(deps.db.prisma, principal.tenantId, id, leaseId);
    if (!acked) throw new NotFoundError("event");
    deps.metrics.inboxAcks.inc();
    ctx.body = { id: acked.id, status: "acknowledged", acknowledged_at: new Date(acked.acknowledged_at).toISOString() };
  };
  router.post("/events/:id/ack", requireScope("events:ack"), ack);
  router.delete("/events/:id/ack", requireScope("events:ack"), ack);
  return router;
}
