import type { PrismaClient } from "../generated/prisma/client";
import type { QueuedEvent } from "../domain/queued-event";
import { filterMatches, loadSubscriptionFilters, type SubscriptionFilter } from "../store/subscriptions";

/** How long a tenant's subscription filters are reused before they are read again, ms. */
const FILTERS_TTL_MS = 2000;
/** Tenants remembered at most; past it the cache starts over. */
const MAX_TENANTS = 10_000;

/**
 * The rows storing events writes: each event's own row plus one delivery per live subscription of
 * its tenant whose filter matches it. The group commit bounds its statements by this weight, so a
 * tenant with many matching subscriptions gets smaller groups instead of statements that outlast
 * the statement timeout. Filters are cached per tenant for FILTERS_TTL_MS; a subscription created
 * within that window is weighed from the next refresh on.
 */
export class FanoutWeights {
  private readonly filters = new Map<string, { at: number; filters: readonly SubscriptionFilter[] }>();

  constructor(private readonly prisma: PrismaClient) {}

  /** The rows each event will write (at least 2: the event and its `default` delivery). */
  async rowsOf(events: readonly QueuedEvent[]): Promise<number[]> {
    const now = Date.now();
    const stale = [...new Set(events.map((e) => e.tenant_id))].filter((t) => {
      const f = this.filters.get(t);
      return !f || now - f.at > FILTERS_TTL_MS;
    });
    if (stale.length > 0) {
      try {
        const loaded = await loadSubscriptionFilters(this.prisma, stale);
        if (this.filters.size + loaded.size > MAX_TENANTS) this.filters.clear();
        for (const [t, filters] of loaded) this.filters.set(t, { at: now, filters });
      } catch {
        // Unreadable now (the commit will find out why and retry): weigh from what is known.
      }
    }
    return events.map((e) => {
      const filters = this.filters.get(e.tenant_id)?.filters;
      if (!filters) return 2;
      let deliveries = 0;
      for (const f of filters) if (filterMatches(f, e)) deliveries++;
      return 1 + Math.max(1, deliveries);
    });
  }
}
