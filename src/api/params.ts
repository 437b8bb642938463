import type { Context } from "koa";
import { EVENT_ID_PATTERN } from "../domain/ids";
import { NotFoundError } from "../errors";

/*
 * Path parameters and limits more than one route reads, so that routes do not import each other.
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
