import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { joiDetails } from "../../domain/envelope";
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

/** A filter field lists 1–100 distinct values (types and tags 1–128 characters, sources 1–256, as the envelope allows). */
const values = (max: number) => Joi.array().items(Joi.string().min(1).max(max)).min(1).max(100).unique();
const filter = Joi.object({ types: values(128), sources: values(256), tags: values(128) }).unknown(false);
const name = Joi.string()
  .pattern(SUBSCRIPTION_NAME_PATTERN)
  .messages({ "string.pattern.base": "{{#label}} must be 1–64 characters of [a-z0-9][a-z0-9._-]*" });
const createBody = Joi.object({ name: name.required(), filter }).unknown(false);
const updateBody = Joi.object({ filter: filter.allow(null).required() }).unknown(false);

/** Bodies are a name and a filter of at most 300 short strings. */
const BODY_BYTES = 64 * 1024;

function validateBody<T>(schema: Joi.ObjectSchema, body: unknown, what: string): T {
  const { value, error } = schema.validate(body, { abortEarly: false, convert: false });
  if (error) throw new ValidationError(`invalid ${what} body`, joiDetails(error));
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
    const row = await createSubscription(deps.db.prisma, principal.tenantId, v.name, v.filter ?? {});
    if (!row) throw new ConflictError("subscription_exists", `a subscription named ${v.name} exists already`);
    const created = subscriptionView(row);
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

  router.delete("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    if (!(await changing(() => deleteSubscription(deps.db.prisma, principal.tenantId, nameParam(ctx))))) throw notFound();
    ctx.status = 204;
  });
  return router;
}
