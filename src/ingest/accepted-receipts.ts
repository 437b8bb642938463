import { LRUCache } from "lru-cache";
import type { Redis } from "ioredis";

/** How long an accepted-but-not-yet-stored event answers `status: "queued"`, seconds. */
export const QUEUED_RECEIPT_SECONDS = 15 * 60;

/** SET each key (KEYS) to 1 with a TTL of ARGV[1] seconds. */
const RECEIPTS_SCRIPT = `
for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'EX', ARGV[1]) end
return #KEYS`;

interface ReceiptBatch {
  readonly slots: string[];
  readonly waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

type ReceiptsCommand = { triggersReceipts(numKeys: number, ...args: string[]): Promise<number> };

/**
 * Remembers which event ids the API accepted recently, per tenant, so GET /events/{id} can answer
 * `queued` for an event that is still on SQS instead of a misleading 404. On Redis when configured
 * (shared by every API process), in bounded process memory otherwise. Best effort: losing a receipt
 * only turns a `queued` answer into a 404 until the worker stores the event.
 */
export class AcceptedReceipts {
  /** Bounded: past 200 000 receipts the least recently used go first (not all at once). */
  private readonly local = new LRUCache<string, number>({ max: 200_000 });
  /** Receipts of this event-loop turn, written to Redis together in one script call. */
  private pending: ReceiptBatch | undefined;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly ttlSeconds = QUEUED_RECEIPT_SECONDS,
  ) {
    redis?.defineCommand("triggersReceipts", { lua: RECEIPTS_SCRIPT });
  }

  async remember(tenantId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    if (this.redis && this.redis.status === "ready") {
      try {
        // One script call per event-loop turn for the receipts of every request answered in it,
        // instead of one SET per event.
        await this.writeShared(ids.map((id) => this.slot(tenantId, id)));
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

  private writeShared(slots: readonly string[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!this.pending) {
        const batch: ReceiptBatch = { slots: [], waiters: [] };
        this.pending = batch;
        setImmediate(() => {
          if (this.pending === batch) this.pending = undefined;
          (this.redis as unknown as ReceiptsCommand)
            .triggersReceipts(batch.slots.length, ...batch.slots, String(this.ttlSeconds))
            .then(
              () => batch.waiters.forEach((w) => w.resolve()),
              (err: unknown) => batch.waiters.forEach((w) => w.reject(err)),
            );
        });
      }
      for (const s of slots) this.pending.slots.push(s);
      this.pending.waiters.push({ resolve, reject });
    });
  }

  private slot(tenantId: string, id: string): string {
    return `${this.prefix}:acc:${tenantId.length}:${tenantId}:${id}`;
  }
}
