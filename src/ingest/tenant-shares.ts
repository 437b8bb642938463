/** Longest delay SQS allows on a message, seconds. */
const MAX_DELAY_SECONDS = 900;
/** A tenant refused no event for this long is no longer over its share: its next delay starts at 1 s again, ms. */
const CALM_MS = 10_000;
/** Another tenant's events seen within this long make a tenant's share binding, ms. */
const CONTENTION_MS = 10_000;


/**
 * Each tenant's share of the rows a worker process holds in hand (received, waiting for or in a
 * group commit). A tenant past its share gets no more until some of its rows are committed: its
 * further events are sent back to the queue with a delay instead (group-commit.ts), so the
 * receivers keep reaching other tenants' messages behind its backlog. The delay grows with how long
 * the tenant has been over its share (1 s at first, then about that many seconds, at most 900), so
 * a backlog that outlasts the worker's capacity costs about one resend per event per doubling
 * rather than one per second. The share binds only while another tenant's events have been seen
 * within the last 10 s: a tenant alone is never deferred.
 */
export class TenantShares {
  private readonly inHand = new Map<string, number>();
  private readonly overSince = new Map<string, number>();
  private readonly lastRefused = new Map<string, number>();
  /** The tenant seen last, and the last one seen before it that differs from it: enough to tell any tenant when it last saw another. */
  private latest: { tenant: string; at: number } | undefined;
  private previous: { tenant: string; at: number } | undefined;

  /** @param maxRows rows one tenant may hold in hand; a tenant holding none is always admitted one event. */
  constructor(private readonly maxRows: number) {}

  /** Takes `rows` of the tenant's share; false (nothing taken) when that would pass it. */
  admit(tenant: string, rows: number, now = Date.now()): boolean {
    const held = this.inHand.get(tenant) ?? 0;
    this.seen(tenant, now);
    if (held > 0 && held + rows > this.maxRows && this.contended(tenant, now)) {
      if (!this.overSince.has(tenant)) this.overSince.set(tenant, now);
      this.lastRefused.set(tenant, now);
      return false;
    }
    // The episode ends only after a calm spell: a tenant whose backlog keeps its share full drops
    // to zero between commits without being any less over it.
    if (held === 0 && now - (this.lastRefused.get(tenant) ?? 0) > CALM_MS) {
      this.overSince.delete(tenant);
      this.lastRefused.delete(tenant);
    }
    this.inHand.set(tenant, held + rows);
    return true;
  }

  /** Notes a tenant's events in hand (every tenant of a received batch is noted before any is admitted). */
  seen(tenant: string, now = Date.now()): void {
    if (this.latest && this.latest.tenant !== tenant) this.previous = this.latest;
    this.latest = { tenant, at: now };
  }

  /** Whether another tenant's events were seen recently. */
  private contended(tenant: string, now: number): boolean {
    const other = this.latest?.tenant !== tenant ? this.latest : this.previous;
    return other !== undefined && now - other.at <= CONTENTION_MS;
  }

  /** Takes rows regardless of the share (events that could not be sent back). */
  force(tenant: string, rows: number): void {
    this.inHand.set(tenant, (this.inHand.get(tenant) ?? 0) + rows);
  }

  /** Gives back rows once they are committed (or handed back). */
  release(tenant: string, rows: number): void {
    const left = (this.inHand.get(tenant) ?? 0) - rows;
    if (left > 0) this.inHand.set(tenant, left);
    else this.inHand.delete(tenant);
  }

  /** Delay for a tenant's deferred events, seconds. */
  delaySeconds(tenant: string, now = Date.now()): number {
    const since = this.overSince.get(tenant) ?? now;
    return Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.round((now - since) / 1000)));
  }
}
