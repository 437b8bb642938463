import type { PrismaClient } from "../generated/prisma/client";
import { purgeDeletedSubscriptionBatch } from "../store/subscriptions";

/** One purge run's limits. */
export interface PurgeSubscriptionsOptions {
  /** Most deliveries one DELETE removes, so each statement is short and holds few row locks. */
  readonly batchSize: number;
  /** Wall-clock budget of the run, ms: no new statement starts once it is spent; the rest waits for the next run. */
  readonly timeBudgetMs: number;
  /** Most statements of the run (default unbounded within the budget). */
  readonly maxBatches?: number;
}

/**
 * Removes what deleted subscriptions left behind (DELETE /subscriptions/{name} only marks them):
 * their deliveries, `batchSize` at a time, then each row. Returns what it removed.
 */
export async function purgeDeletedSubscriptions(
  deps: { readonly prisma: PrismaClient },
  opts: PurgeSubscriptionsOptions,
): Promise<{ deliveries: number; subscriptions: number }> {
  const deadline = Date.now() + opts.timeBudgetMs;
  let deliveries = 0;
  let subscriptions = 0;
  for (let batches = 0; batches < (opts.maxBatches ?? Infinity) && Date.now() < deadline; batches++) {
    const step = await purgeDeletedSubscriptionBatch(deps.prisma, opts.batchSize);
    if (!step.found) break;
    deliveries += step.deliveries;
    subscriptions += step.subscriptions;
  }
  return { deliveries, subscriptions };
}
