import type { Context } from "koa";
import type { ApiDeps } from "../api/deps";
import type { LeaseResult } from "../store/events/lease-events";
import type { InboxFilter } from "../store/events/inbox-filter";
import { releaseLeases } from "../store/events/release-leases";

export interface LongPollOptions {
  /** The API key's id and its tenant: the quotas are counted per key and per tenant. */
  readonly keyId: string;
  readonly tenantId: string;
  /** What the request waits on (its group of waiters) and how much one lease takes. */
  readonly subscriptionId: number;
  readonly filter: InboxFilter;
  readonly limit: number;
  readonly waitSeconds: number;
  /** One lease attempt with the request's filters. */
  readonly lease: () => Promise<LeaseResult>;
}

/**
 * GET /inbox?wait_seconds=N: takes a long-poll slot of the key and tenant (429 past the quota, at
 * once), leases at once when something is deliverable (skipped when the key is known to have
 * nothing); otherwise waits (no query while waiting) until a wake-up for its key, then tries once
 * more, until N seconds pass. Answers an empty page on timeout or shutdown. When the client goes
 * away, nothing is leased after that, and a lease that was already running when it left is
 * released again.
 */
export async function longPollLease(deps: Pick<ApiDeps, "wakeups" | "longPolls" | "db" | "logger">, ctx: Context, opts: LongPollOptions): Promise<LeaseResult> {
  const slot = deps.longPolls.acquire(opts.keyId, opts.tenantId);
  const deadline = Date.now() + opts.waitSeconds * 1000;
  const gone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) gone.abort();
  };
  ctx.res.once("close", onClose);
  if (ctx.req.socket?.destroyed) gone.abort();
  // Registered before the first attempt: a wake-up that lands while a lease runs is not lost.
  const waiter = deps.wakeups.register({ tenantId: opts.tenantId, subscriptionId: opts.subscriptionId, filter: opts.filter, limit: opts.limit });
  const empty: LeaseResult = { events: [], hasMore: false, dead: 0 };
  try {
    let first = true;
    for (;;) {
      if (gone.signal.aborted) return empty;
      if (!(first && waiter.knownEmpty())) {
        const token = waiter.attempt();
        const result = await opts.lease();
        waiter.result(token, result.events.length, result.hasMore);
        if (gone.signal.aborted) {
          await release(deps, opts.tenantId, result);
          return empty;
        }
        if (result.events.length > 0 || deps.wakeups.isClosed) return result;
      }
      first = false;
      const reason = await waiter.wait(deadline, gone.signal);
      if (reason !== "wake") return empty;
    }
  } finally {
    waiter.done();
    slot();
    ctx.res.off("close", onClose);
  }
}

async function release(deps: Pick<ApiDeps, "wakeups" | "db" | "logger">, tenantId: string, result: LeaseResult): Promise<void> {
  const leases = result.events.flatMap((e) => (e.lease_id ? [{ id: e.id, lease_id: e.lease_id }] : []));
  if (leases.length === 0) return;
  try {
    const released = await releaseLeases(deps.db.prisma, tenantId, leases);
    if (released > 0) deps.wakeups.wakeTenant(tenantId, null, released);
  } catch (err) {
    // The leases then simply expire after their visibility timeout.
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err), events: leases.length }, "could not release the leases of a departed long poll");
  }
}
