import { Type } from "@sinclair/typebox";
import { NotFoundError } from "../errors";
import { DEFAULT_SUBSCRIPTION, resolveSubscription, SUBSCRIPTION_NAME_PATTERN } from "../store/subscriptions";
import { EventId, SubscriptionName } from "./contract/schemas";
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

/** The `{id}` of an event path (an id that cannot exist is simply not found). */
export const idParams = Type.Object({ id: { ...EventId, description: "An event id; an id that cannot exist is 404." } });

/** The `subscription=` query parameter of the inbox and ack routes. */
export const subscriptionField = Type.Optional(
  Type.String({ maxLength: 64, default: DEFAULT_SUBSCRIPTION, examples: SubscriptionName.examples, description: "The subscription whose deliveries this acts on (default `default`); an unknown one, or one that cannot be a name, is 404." }),
);

/** The query of an event route that takes nothing but `subscription`. */
export const subscriptionQuery = Type.Object({ subscription: subscriptionField }, { additionalProperties: false });

/** What a `subscription` query parameter must name (404 otherwise). */
export const SUBSCRIPTION_RULE = "subscription names an existing subscription of the tenant (404 not_found)";

/** The tenant's subscription id of a validated `subscription=` (default `default`); an unknown name answers 404. */
export async function subscriptionId(deps: ApiDeps, tenantId: string, name: string | undefined): Promise<number> {
  const wanted = name ?? DEFAULT_SUBSCRIPTION;
  if (!SUBSCRIPTION_NAME_PATTERN.test(wanted)) throw new NotFoundError("subscription");
  const id = await resolveSubscription(deps.db.prisma, tenantId, wanted);
  if (id === null) throw new NotFoundError("subscription");
  return id;
}
