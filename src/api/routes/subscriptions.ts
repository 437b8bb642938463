import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { joiDetails } from "../../domain/envelope";
import { checkSubscriptionFilter } from "../../domain/subscription-filter";
import { ConflictError, NotFoundError, ValidationError } from "../../errors";
import {
  createSubscription,
  DefaultSubscriptionFixedError,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  SUBSCRIPTION_NAME_PATTERN,
  updateSubscription,
  type SubscriptionFilter,
} from "../../store/subscriptions";
import type { ApiDeps } from "../deps";
import { subscriptionView } from "../views/subscription-view";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";

/** The filter is checked against SUBSCRIPTION_FILTER_SCHEMA (the event fields' own rules) after the body's shape. */
const filter = Joi.any();
const name = Joi.string()
  .pattern(SUBSCRIPTION_NAME_PATTERN)
  .messages({ "string.pattern.base": "{{#label}} must be 1–64 characters of [a-z0-9][a-z0-9._-]*" });
const createBody = Joi.object({ name: name.required(), filter }).unknown(false);
const updateBody = Joi.object({ filter: filter.allow(null).required() }).unknown(false);

/** Bodies are a name and a filter of at most 300 short strings. */
const BODY_BYTES = 64 * 1024;

function validateBody<T extends { filter?: SubscriptionFilter | null }>(schema: Joi.ObjectSchema, body: unknown, what: string): T {
  const { value, error } = schema.validate(body, { abortEarly: false, convert: false });
  const details = error ? joiDetails(error) : [];
  const f = (value as { filter?: unknown } | undefined)?.filter;
  if (f !== undefined && f !== null) details.push(...checkSubscriptionFilter(f));
  if (details.length > 0) throw new ValidationError(`invalid ${what} body`, details);
  return value as T;
}

const notFound = () => new NotFoundError("subscription");

/** The subscription name of a path; one that cannot be a name is simply not found. */
function nameParam(ctx: Context): string {
  const n = ctx.params.name;
  if (typeof n !== "string" || !SUBSCRIPTION_NAME_PATTERN.test(n)) throw notFound();
  return n;
}

/** Runs a change of a subscription; the store's refusal to change `default` answers 409 default_subscription. */
async function changing<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    if (err instanceof DefaultSubscriptionFixedError) throw new ConflictError("default_subscription", err.message);
    throw err;
  }
}

/**
 * POST /subscriptions, GET /subscriptions, GET|PATCH|DELETE /subscriptions/{name}: a tenant's
 * named subscriptions (scope subscriptions:manage; admin implies it). Only the caller's tenant is
 * ever read or changed.
 */
export function subscriptionRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const manage = requireScope("subscriptions:manage");

  router.post("/subscriptions", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const v = validateBody<{ name: string; filter?: SubscriptionFilter }>(createBody, await readJsonBody(ctx, BODY_BYTES), "subscription");
    const max = deps.config.limits.maxSubscriptionsPerTenant;
    const result = await createSubscription(deps.db.prisma, principal.tenantId, v.name, v.filter ?? {}, max);
    if ("refused" in result) {
      if (result.refused === "exists") throw new ConflictError("subscription_exists", `a subscription named ${v.name} exists already`);
      throw new ConflictError("subscription_quota_exceeded", `the tenant has ${max} subscriptions (default included), the most it may have; delete one first`);
    }
    const created = subscriptionView(result.created);
    ctx.status = 201;
    ctx.set("Location", `/subscriptions/${created.name}`);
    ctx.body = created;
  });

  router.get("/subscriptions", manage, async (ctx) => {
    const principal = principalOf(ctx);
    ctx.body = { data: (await listSubscriptions(deps.db.prisma, principal.tenantId)).map(subscriptionView) };
  });

  router.get("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const row = await getSubscription(deps.db.prisma, principal.tenantId, nameParam(ctx));
    if (!row) throw notFound();
    ctx.body = subscriptionView(row);
  });

  router.patch("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const n = nameParam(ctx);
    const v = validateBody<{ filter: SubscriptionFilter | null }>(updateBody, await readJsonBody(ctx, BODY_BYTES), "subscription update");
    const row = await changing(() => updateSubscription(deps.db.prisma, principal.tenantId, n, v.filter ?? {}));
    if (!row) throw notFound();
    ctx.body = subscriptionView(row);
  });

  // Answers at once: the subscription is marked deleted; its deliveries are purged in the background (src/jobs/purge-subscriptions.ts).
  router.delete("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    if (!(await changing(() => deleteSubscription(deps.db.prisma, principal.tenantId, nameParam(ctx))))) throw notFound();
    ctx.status = 204;
  });
  return router;
}
