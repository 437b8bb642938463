import { LongPollQuotaError } from "../errors";

/** Retry-After of a refused long poll, seconds: a slot frees as soon as any poll of the key or tenant answers. */
export const LONG_POLL_RETRY_AFTER_SECONDS = 1;

/**
 * Concurrent long polls (GET /inbox with wait_seconds > 0) per API key and per tenant, counted in
 * this API process. Per process on purpose: what a waiting request holds (a connection, a waiter,
 * its wake-ups) is this process's, a count in memory needs no dependency that could itself fail or
 * leak slots when a process dies, and the load balancer spreads a tenant's polls over the processes
 * (a tenant may hold up to quota x processes in all). Past either quota a request is refused at
 * once, never queued.
 */
export class LongPollQuota {
  private readonly perKey = new Map<string, number>();
  private readonly perTenant = new Map<string, number>();

  constructor(
    private readonly keyLimit: number,
    private readonly tenantLimit: number,
    private readonly onRefused: (scope: "key" | "tenant") => void = () => undefined,
  ) {}

  /** Takes a slot for the key and its tenant, or throws LongPollQuotaError (429). Call the answer once to give it back. */
  acquire(keyId: string, tenantId: string): () => void {
    const k = this.perKey.get(keyId) ?? 0;
    const t = this.perTenant.get(tenantId) ?? 0;
    if (k >= this.keyLimit) {
      this.onRefused("key");
      throw new LongPollQuotaError("key", this.keyLimit, LONG_POLL_RETRY_AFTER_SECONDS);
    }
    if (t >= this.tenantLimit) {
      this.onRefused("tenant");
      throw new LongPollQuotaError("tenant", this.tenantLimit, LONG_POLL_RETRY_AFTER_SECONDS);
    }
    this.perKey.set(keyId, k + 1);
    this.perTenant.set(tenantId, t + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      decrement(this.perKey, keyId);
      decrement(this.perTenant, tenantId);
    };
  }

  /** Long polls held now by a tenant (for tests and metrics). */
  heldBy(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }
}

function decrement(map: Map<string, number>, id: string): void {
  const n = (map.get(id) ?? 1) - 1;
  if (n <= 0) map.delete(id);
  else map.set(id, n);
}
