import type { Context } from "koa";
import type { ApiDeps } from "../api/deps";
import type { LeaseResult } from "../store/events/lease-events";
import { releaseLeases } from "../store/events/release-leases";

export interface LongPollOptions {
  readonly tenantId: string;
  /** The request's type filter, so notifications naming other types wake nobody here. */
  readonly type: string | undefined;
  readonly waitSeconds: number;
  /** One lease attempt with the request's filters. */
  readonly lease: () => Promise<LeaseResult>;
}

/**
 * GET /inbox?wait_seconds=N: leases at once when something is deliverable; otherwise waits (no
 * query while waiting) until a wake-up names this tenant, then tries once more, until N seconds
 * pass. Answers an empty page on timeout or shutdown. When the client goes away, nothing is leased
 * after that, and a lease that was already running when it left is released again.
 */
export async function longPollLease(deps: Pick<ApiDeps, "wakeups" | "db" | "logger">, ctx: Context, opts: LongPollOptions): Promise<LeaseResult> {
  const deadline = Date.now() + opts.waitSeconds * 1000;
  const gone = new AbortController();
  const onClose = () => {
    if (!ctx.res.writableFinished) gone.abort();
  };
  ctx.res.once("close", onClose);
  if (ctx.req.socket?.destroyed) gone.abort();
  // Registered before the first attempt: a wake-up that lands while a lease runs is not lost.
  const waiter = deps.wakeups.register(opts.tenantId, opts.type);
  const empty: LeaseResult = { events: [], hasMore: false, dead: 0 };
  try {
    for (;;) {
      if (gone.signal.aborted) return empty;
      const result = await opts.lease();
      if (gone.signal.aborted) {
        await release(deps, opts.tenantId, result);
        return empty;
      }
      if (result.events.length > 0 || deps.wakeups.isClosed) return result;
      const reason = await waiter.wait(deadline, gone.signal);
      if (reason !== "wake") return empty;
    }
  } finally {
    waiter.done();
    ctx.res.off("close", onClose);
  }
}

async function release(deps: Pick<ApiDeps, "wakeups" | "db" | "logger">, tenantId: string, result: LeaseResult): Promise<void> {
  const leases = result.events.flatMap((e) => (e.lease_id ? [{ id: e.id, lease_id: e.lease_id }] : []));
  if (leases.length === 0) return;
  try {
    if ((await releaseLeases(deps.db.prisma, tenantId, leases)) > 0) deps.wakeups.wakeTenant(tenantId);
  } catch (err) {
    // The leases then simply expire after their visibility timeout.
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err), events: leases.length }, "could not release the leases of a departed long poll");
  }
}
