import { errorMessage } from "../errors";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { Database } from "../store/database";
import type { InboxFilter } from "../store/events/inbox-filter";
import { leaseEvents, type LeaseResult } from "../store/events/lease-events";
import { releaseLeases } from "../store/events/release-leases";
import type { LongPollQuota } from "./long-poll-quota";
import type { Wakeups } from "./wakeups";

/** What the inbox service needs: the database, this process's wake-ups and long-poll quota, metrics and a log. */
export interface InboxServiceDeps {
  readonly db: Database;
  readonly wakeups: Wakeups;
  readonly longPolls: LongPollQuota;
  readonly metrics: Pick<Metrics, "inboxLeased" | "inboxDead">;
  readonly logger: Logger;
}

/** One consumer's request for events. */
export interface LeaseRequest {
  /** The API key's id and its tenant: long polls are counted per key and per tenant. */
  readonly keyId: string;
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly filter: InboxFilter;
  /** Events to lease at most. */
  readonly limit: number;
  readonly visibilitySeconds: number;
  readonly maxDeliveries: number;
  /** Until when (epoch ms) to wait for events when none is deliverable; absent or past = answer at once. */
  readonly deadline?: number;
  /** Aborted when the consumer is gone: nothing is leased after that, and a lease already running is released. */
  readonly signal?: AbortSignal;
}

const EMPTY: LeaseResult = { events: [], hasMore: false, dead: 0 };

/**
 * The inbox of one API process: leases events for consumers, waits for them (long polls) and
 * releases leases nobody received. Waiting is on this process's wake-ups (src/inbox/wakeups.ts:
 * a LISTEN/NOTIFY channel, or the embedded database's, plus the registry of waiters).
 */
export class InboxService {
  constructor(private readonly deps: InboxServiceDeps) {}

  /**
   * Up to `limit` deliverable events, leased. Without a deadline in the future, one lease attempt.
   * With one: takes a long-poll slot of the key and tenant (LongPollQuotaError past the quota, at
   * once), leases at once when something is deliverable (skipped when the key is known to have
   * nothing); otherwise waits (no query while waiting) until a wake-up for its key, then tries once
   * more, until the deadline. Answers an empty page on timeout, abort or shutdown.
   */
  async lease(req: LeaseRequest): Promise<LeaseResult> {
    if (req.deadline === undefined || req.deadline <= Date.now()) return this.leaseOnce(req);
    return this.longPoll(req, req.deadline);
  }

  /** One lease attempt, counted; the lease's expiry is armed as a due time for this process's waiters. */
  private async leaseOnce(req: LeaseRequest): Promise<LeaseResult> {
    const result = await leaseEvents(this.deps.db.prisma, req);
    this.deps.metrics.inboxLeased.inc(result.events.length);
    if (result.dead > 0) this.deps.metrics.inboxDead.inc(result.dead);
    // Their expiry makes these events deliverable again: waiters of this process look then.
    const first = result.events[0]?.lease_expires_at;
    if (first) this.deps.wakeups.dueAt(req.tenantId, new Date(first));
    return result;
  }

  private async longPoll(req: LeaseRequest, deadline: number): Promise<LeaseResult> {
    const { wakeups } = this.deps;
    const slot = this.deps.longPolls.acquire(req.keyId, req.tenantId);
    const signal = req.signal ?? new AbortController().signal;
    // Registered before the first attempt: a wake-up that lands while a lease runs is not lost.
    const waiter = wakeups.register({ tenantId: req.tenantId, subscriptionId: req.subscriptionId, filter: req.filter, limit: req.limit });
    try {
      let first = true;
      for (;;) {
        if (signal.aborted) return EMPTY;
        if (!(first && waiter.knownEmpty())) {
          const token = waiter.attempt();
          const result = await this.leaseOnce(req);
          waiter.result(token, result.events.length, result.hasMore);
          if (signal.aborted) {
            await this.release(req.tenantId, result);
            return EMPTY;
          }
          if (result.events.length > 0 || wakeups.isClosed) return result;
        }
        first = false;
        const reason = await waiter.wait(deadline, signal);
        if (reason !== "wake") return EMPTY;
      }
    } finally {
      waiter.done();
      slot();
    }
  }

  /** Undoes the leases of a result nobody received; they are deliverable again at once and wake this process's waiters. */
  private async release(tenantId: string, result: LeaseResult): Promise<void> {
    const leases = result.events.flatMap((e) => (e.lease_id ? [{ id: e.id, lease_id: e.lease_id }] : []));
    if (leases.length === 0) return;
    try {
      const released = await releaseLeases(this.deps.db.prisma, tenantId, leases);
      if (released > 0) this.deps.wakeups.wakeTenant(tenantId, null, released);
    } catch (err) {
      // The leases then simply expire after their visibility timeout.
      this.deps.logger.warn({ err: errorMessage(err), events: leases.length }, "could not release the leases of a departed long poll");
    }
  }
}
