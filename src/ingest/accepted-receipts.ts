import { LRUCache } from "lru-cache";
import type { Redis } from "ioredis";

/** How long an accepted-but-not-yet-stored event answers `status: "queued"`, seconds. */
export const QUEUED_RECEIPT_SECONDS = 15 * 60;

/**
 * Remembers which event ids the API accepted recently, per tenant, so GET /events/{id} can answer
 * `queued` for an event that is still on SQS instead of a misleading 404. On Redis when configured
 * (shared by every API process), in bounded process memory otherwise. Best effort: losing a receipt
 * only turns a `queued` answer into a 404 until the worker stores the event.
 */
export class AcceptedReceipts {
  /** Bounded: past 200 000 receipts the least recently used go first (not all at once). */
  private readonly local = new LRUCache<string, number>({ max: 200_000 });

  constructor(
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly ttlSeconds = QUEUED_RECEIPT_SECONDS,
  ) {}

  async remember(tenantId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    if (this.redis && this.redis.status === "ready") {
      try {
        // Plain commands rather than a MULTI/pipeline object: the client's auto-pipelining merges the
        // receipts of every request answered in this turn into one write.
        await Promise.all(ids.map((id) => this.redis!.set(this.slot(tenantId, id), "1", "EX", this.ttlSeconds)));
        return;
      } catch {
        // fall through to memory
      }
    }
    const expires = Date.now() + this.ttlSeconds * 1000;
    for (const id of ids) this.local.set(this.slot(tenantId, id), expires);
  }

  async wasAccepted(tenantId: string, id: string): Promise<boolean> {
    const slot = this.slot(tenantId, id);
    const local = this.local.get(slot);
    if (local !== undefined && local > Date.now()) return true;
    if (this.redis && this.redis.status === "ready") {
      try {
        return (await this.redis.exists(slot)) === 1;
      } catch {
        return false;
      }
    }
    return false;
  }

  private slot(tenantId: string, id: string): string {
    return `${this.prefix}:acc:${tenantId.length}:${tenantId}:${id}`;
  }
}
