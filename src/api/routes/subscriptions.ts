import { Type } from "@sinclair/typebox";
import { checkSubscriptionFilter } from "../../domain/subscription-filter";
import { ConflictError, NotFoundError, ValidationError } from "../../errors";
import { createSubscription, DefaultSubscriptionFixedError, deleteSubscription, getSubscription, listSubscriptions, updateSubscription, type SubscriptionFilter } from "../../store/subscriptions";
import { operation } from "../contract/operation";
import { SubscriptionFilterSchema, SubscriptionName, SubscriptionViewSchema } from "../contract/schemas";
import { principalOf } from "../middleware/auth";
import { subscriptionView } from "../views/subscription-view";

/*
 * POST /subscriptions, GET /subscriptions, GET|PATCH|DELETE /subscriptions/{name}: a tenant's
 * named subscriptions (scope subscriptions:manage; admin implies it). Only the caller's tenant is
 * ever read or changed.
 */

/** Bodies are a name and a filter of at most 300 short strings. */
const BODY_BYTES = 64 * 1024;
const bodyLimit = () => BODY_BYTES;

const nameParams = Type.Object({ name: { ...SubscriptionName, description: "A subscription name; an unknown one is 404." } });
const noQuery = Type.Object({}, { additionalProperties: false });
const FILTER_RULE = "no filter source holds a NUL character or an unpaired surrogate (400 validation_failed)";

/** What the filter's schema cannot say (NUL and unpaired surrogates in sources): 400 with its details. */
function checkFilter(filter: SubscriptionFilter | null | undefined): void {
  if (filter === undefined || filter === null) return;
  const details = checkSubscriptionFilter(filter);
  if (details.length > 0) throw new ValidationError("invalid subscription body", details);
}

const notFound = () => new NotFoundError("subscription");

/** Runs a change of a subscription; the store's refusal to change `default` answers 409 default_subscription. */
async function changing<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    if (err instanceof DefaultSubscriptionFixedError) throw new ConflictError("default_subscription", err.message);
    throw err;
  }
}

export const createSubscriptionOperation = operation({
  id: "createSubscription",
  method: "POST",
  path: "/subscriptions",
  tag: "subscriptions",
  scope: "subscriptions:manage",
  summary: "Create a subscription",
  description:
    "A named consumer of the tenant's events, with its own leases, delivery counts, dead state and acks. It receives the events stored after its creation that match its filter " +
    "(types and sources match any listed value, tags must all be present, an absent field matches all). 409 subscription_exists when the name is taken, 409 subscription_quota_exceeded when the tenant has MAX_SUBSCRIPTIONS_PER_TENANT subscriptions (default 100, `default` included). Scope subscriptions:manage (or admin).",
  query: noQuery,
  body: { schema: Type.Object({ name: SubscriptionName, filter: Type.Optional(SubscriptionFilterSchema) }, { additionalProperties: false }), required: true, limit: bodyLimit },
  responses: { 201: { description: "Created", schema: SubscriptionViewSchema, headers: { Location: { description: "The subscription's URL", required: true, schema: { type: "string" } } } } },
  errors: { 409: ["subscription_exists", "subscription_quota_exceeded"] },
  rules: [FILTER_RULE],
  handler: (deps) => async (ctx, { body }) => {
    const principal = principalOf(ctx);
    checkFilter(body.filter);
    const max = deps.config.limits.maxSubscriptionsPerTenant;
    const result = await createSubscription(deps.db.prisma, principal.tenantId, body.name, body.filter ?? {}, max);
    if ("refused" in result) {
      if (result.refused === "exists") throw new ConflictError("subscription_exists", `a subscription named ${body.name} exists already`);
      throw new ConflictError("subscription_quota_exceeded", `the tenant has ${max} subscriptions (default included), the most it may have; delete one first`);
    }
    const created = subscriptionView(result.created);
    ctx.status = 201;
    ctx.set("Location", `/subscriptions/${created.name}`);
    ctx.body = created;
  },
});

export const listSubscriptionsOperation = operation({
  id: "listSubscriptions",
  method: "GET",
  path: "/subscriptions",
  tag: "subscriptions",
  scope: "subscriptions:manage",
  summary: "List the tenant's subscriptions",
  description: "Every subscription of the tenant, by name; `default` always exists. Scope subscriptions:manage (or admin).",
  query: noQuery,
  responses: { 200: { description: "The subscriptions", schema: Type.Object({ data: Type.Array(SubscriptionViewSchema) }, { additionalProperties: false }) } },
  handler: (deps) => async (ctx) => {
    const principal = principalOf(ctx);
    ctx.body = { data: (await listSubscriptions(deps.db.prisma, principal.tenantId)).map(subscriptionView) };
  },
});

export const getSubscriptionOperation = operation({
  id: "getSubscription",
  method: "GET",
  path: "/subscriptions/{name}",
  tag: "subscriptions",
  scope: "subscriptions:manage",
  summary: "Read a subscription",
  params: nameParams,
  query: noQuery,
  responses: { 200: { description: "The subscription", schema: SubscriptionViewSchema } },
  handler: (deps) => async (ctx, { params }) => {
    const principal = principalOf(ctx);
    const row = await getSubscription(deps.db.prisma, principal.tenantId, params.name);
    if (!row) throw notFound();
    ctx.body = subscriptionView(row);
  },
});

export const updateSubscriptionOperation = operation({
  id: "updateSubscription",
  method: "PATCH",
  path: "/subscriptions/{name}",
  tag: "subscriptions",
  scope: "subscriptions:manage",
  summary: "Change a subscription's filter",
  description: "Replaces the filter (null: no filter); it applies to events stored from then on. The default subscription cannot be changed (409 default_subscription).",
  params: nameParams,
  query: noQuery,
  body: { schema: Type.Object({ filter: Type.Union([SubscriptionFilterSchema, Type.Null()]) }, { additionalProperties: false }), required: true, limit: bodyLimit },
  responses: { 200: { description: "The subscription", schema: SubscriptionViewSchema } },
  errors: { 409: ["default_subscription"] },
  rules: [FILTER_RULE],
  handler: (deps) => async (ctx, { params, body }) => {
    const principal = principalOf(ctx);
    checkFilter(body.filter);
    const row = await changing(() => updateSubscription(deps.db.prisma, principal.tenantId, params.name, body.filter ?? {}));
    if (!row) throw notFound();
    ctx.body = subscriptionView(row);
  },
});

// Answers at once: the subscription is marked deleted; its deliveries are purged in the background (src/jobs/purge-subscriptions.ts).
export const deleteSubscriptionOperation = operation({
  id: "deleteSubscription",
  method: "DELETE",
  path: "/subscriptions/{name}",
  tag: "subscriptions",
  scope: "subscriptions:manage",
  summary: "Delete a subscription and its deliveries",
  description:
    "Answers at once: the subscription leaves the API, fan-out and leases immediately and its name is free again; its deliveries are removed in the background. The default subscription cannot be deleted (409 default_subscription).",
  params: nameParams,
  query: noQuery,
  responses: { 204: { description: "Deleted" } },
  errors: { 409: ["default_subscription"] },
  handler: (deps) => async (ctx, { params }) => {
    const principal = principalOf(ctx);
    if (!(await changing(() => deleteSubscription(deps.db.prisma, principal.tenantId, params.name)))) throw notFound();
    ctx.status = 204;
  },
});
