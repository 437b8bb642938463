import type { Context } from "koa";
import { BadRequestError, NotFoundError } from "../../errors";
import { DEFAULT_SUBSCRIPTION, resolveSubscription, SUBSCRIPTION_NAME_PATTERN } from "../../store/subscriptions";
import type { ApiDeps } from "../deps";

/**
 * The `subscription=` query parameter of an inbox or ack route (default `default`), resolved to
 * the tenant's subscription id. An unknown name, or one that cannot be a name, answers 404.
 */
export async function subscriptionParam(deps: ApiDeps, ctx: Context, tenantId: string): Promise<number> {
  const raw = ctx.query.subscription;
  if (Array.isArray(raw)) throw new BadRequestError("validation_failed", "subscription may be given once");
  const name = raw ?? DEFAULT_SUBSCRIPTION;
  if (!SUBSCRIPTION_NAME_PATTERN.test(name)) throw new NotFoundError("subscription");
  return resolveSubscription(deps.db.prisma, tenantId, name);
}
