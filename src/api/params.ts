import type { Context } from "koa";
import { EVENT_ID_PATTERN } from "../domain/ids";
import { BadRequestError, NotFoundError } from "../errors";
import { DEFAULT_SUBSCRIPTION, resolveSubscription, SUBSCRIPTION_NAME_PATTERN } from "../store/subscriptions";
import type { ApiDeps } from "./deps";

/*
 * Parameters and limits more than one route reads, so that routes do not import each other.
 */

/**
 * Longest lease, seconds: 1 h. A lease is a promise that nobody else gets the event, so its length
 * is how long a crashed consumer keeps an event from everyone. Consumers that need longer extend
 * the lease while they work (POST /events/{id}/extend, which the client library's heartbeat does),
 * so a long maximum buys nothing a heartbeat does not, and SQS's 12 h would let one lost consumer
 * stall an event for half a day.
 */
export const MAX_VISIBILITY_SECONDS = 3_600;

/** The event id of a path, or 404 (an id that cannot exist is simply not found). */
export function eventIdParam(ctx: Context): string {
  const id = ctx.params.id;
  if (typeof id !== "string" || !EVENT_ID_PATTERN.test(id)) throw new NotFoundError("event");
  return id;
}

/**
 * The `subscription=` query parameter of an inbox or ack route (default `default`), resolved to
 * the tenant's subscription id. An unknown name, or one that cannot be a name, answers 404.
 */
export async function subscriptionParam(deps: ApiDeps, ctx: Context, tenantId: string): Promise<number> {
  const raw = ctx.query.subscription;
  if (Array.isArray(raw)) throw new BadRequestError("validation_failed", "subscription may be given once");
  const name = raw ?? DEFAULT_SUBSCRIPTION;
  if (!SUBSCRIPTION_NAME_PATTERN.test(name)) throw new NotFoundError("subscription");
  const id = await resolveSubscription(deps.db.prisma, tenantId, name);
  if (id === null) throw new NotFoundError("subscription");
  return id;
}
