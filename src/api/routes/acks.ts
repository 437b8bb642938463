import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { NotFoundError, ValidationError } from "../../errors";
import { ackEvent } from "../../store/events/ack-events";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";
import { eventIdParam } from "./events";

const ackBodySchema = Joi.object({ lease_id: Joi.string().guid() }).unknown(false);

/** POST|DELETE /events/{id}/ack. */
export function ackRoutes(deps: ApiDeps): Router {
  const router = new Router();
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
