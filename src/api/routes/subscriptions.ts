import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { joiDetails } from "../../domain/envelope";
import { NotFoundError, ValidationError } from "../../errors";
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  SUBSCRIPTION_NAME_PATTERN,
  updateSubscription,
  type SubscriptionFilter,
} from "../../store/subscriptions";
import type { ApiDeps } from "../deps";
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

/** The subscription name of a path; one that cannot be a name is simply not found. */
function nameParam(ctx: Context): string {
  const n = ctx.params.name;
  if (typeof n !== "string" || !SUBSCRIPTION_NAME_PATTERN.test(n)) throw new NotFoundError("subscription");
  return n;
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
    const created = await createSubscription(deps.db.prisma, principal.tenantId, v.name, v.filter ?? {});
    ctx.status = 201;
    ctx.set("Location", `/subscriptions/${created.name}`);
    ctx.body = created;
  });

  router.get("/subscriptions", manage, async (ctx) => {
    const principal = principalOf(ctx);
    ctx.body = { data: await listSubscriptions(deps.db.prisma, principal.tenantId) };
  });

  router.get("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    ctx.body = await getSubscription(deps.db.prisma, principal.tenantId, nameParam(ctx));
  });

  router.patch("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const n = nameParam(ctx);
    const v = validateBody<{ filter: SubscriptionFilter | null }>(updateBody, await readJsonBody(ctx, BODY_BYTES), "subscription update");
    ctx.body = await updateSubscription(deps.db.prisma, principal.tenantId, n, v.filter ?? {});
  });

  router.delete("/subscriptions/:name", manage, async (ctx) => {
    const principal = principalOf(ctx);
    await deleteSubscription(deps.db.prisma, principal.tenantId, nameParam(ctx));
    ctx.status = 204;
  });
  return router;
}
