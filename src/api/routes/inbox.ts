import Router from "@koa/router";
import Joi from "joi";
import { ValidationError } from "../../errors";
import { joiDetails } from "../../domain/envelope";
import { eventView } from "../../store/events/event-row";
import { leaseEvents } from "../../store/events/lease-events";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";

const leaseQuery = Joi.object({
  limit: Joi.number().integer().min(1).max(500).default(50),
  visibility_timeout: Joi.number().integer().min(1).max(43200),
}).unknown(false);

/** GET /inbox: leases the caller's deliverable events. */
export function inboxRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get("/inbox", requireScope("inbox:read"), async (ctx) => {
    const principal = principalOf(ctx);
    const { value, error } = leaseQuery.validate(ctx.query, { abortEarly: false, convert: true });
    if (error) throw new ValidationError("invalid inbox query", joiDetails(error));
    const q = value as { limit: number; visibility_timeout?: number };
    const { events, hasMore } = await leaseEvents(deps.db.prisma, {
      tenantId: principal.tenantId,
      limit: q.limit,
      visibilitySeconds: q.visibility_timeout ?? deps.config.inbox.defaultVisibilitySeconds,
      maxDeliveries: deps.config.inbox.maxDeliveries,
    });
    deps.metrics.inboxLeased.inc(events.length);
    ctx.body = { data: events.map(eventView), has_more: hasMore };
  });
  return router;
}
