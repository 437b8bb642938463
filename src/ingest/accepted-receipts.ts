import { LRUCache } from "lru-cache";
import type { Redis } from "ioredis";
import { RedisBackoff } from "../redis-backoff";

/** How long an accepted-but-not-yet-stored event answers `status: "queued"`, seconds. */
export const QUEUED_RECEIPT_SECONDS = 15 * 60;

/** SET each key (KEYS) to 1 with a TTL of ARGV[1] seconds. */
const RECEIPTS_SCRIPT = `
for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'EX', ARGV[1]) end
return #KEYS`;

type ReceiptsCommand = { triggersReceipts(numKeys: number, ...args: string[]): Promise<number> };

/** Keys one script call writes at most (a busy turn is split into several calls). */
const MAX_KEYS_PER_CALL = 1000;

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
  private pending: string[] | undefined;
  /** Script calls in flight (see settled). */
  private readonly inFlight = new Set<Promise<void>>();
  /** A Redis that just failed (or missed its deadline) is not asked every turn: receipts stay in memory meanwhile. */
  private readonly backoff: RedisBackoff;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly ttlSeconds = QUEUED_RECEIPT_SECONDS,
  ) {
    redis?.defineCommand("triggersReceipts", { lua: RECEIPTS_SCRIPT });
    this.backoff = new RedisBackoff(redis);
  }

  /**
   * Records receipts without holding up the caller: the 202 does not wait for them. On Redis, the
   * receipts of every request answered in one event-loop turn go out in one script call at the end
   * of that turn, before any later request of the same process can ask for them (one connection,
   * in order). If Redis is down or refuses the call, they are kept in process memory instead, and
   * for a second after a failure the receipts go straight to memory. A receipt still waiting for
   * its turn's call is in neither place yet: another API process may answer 404 for that moment.
   */
  remember(tenantId: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    if (this.backoff.usable()) {
      if (!this.pending) {
        const batch: string[] = [];
        this.pending = batch;
        setImmediate(() => this.writeShared(batch));
      }
      for (const id of ids) this.pending.push(this.slot(tenantId, id));
      return;
    }
    this.keepLocally(ids.map((id) => this.slot(tenantId, id)));
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

  /** Resolves once every receipt recorded so far has been written (to Redis or to memory). */
  async settled(): Promise<void> {
    if (this.pending) this.writeShared(this.pending);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private writeShared(batch: string[]): void {
    if (this.pending === batch) this.pending = undefined;
    // Taken out of the batch, so writing the same batch again (settled, then its setImmediate) sends nothing.
    const slots = batch.splice(0);
    for (let i = 0; i < slots.length; i += MAX_KEYS_PER_CALL) this.send(slots.slice(i, i + MAX_KEYS_PER_CALL));
  }

  private send(slots: string[]): void {
    const failed = () => {
      this.backoff.failed();
      this.keepLocally(slots);
    };
    let call: Promise<void>;
    try {
      call = (this.redis as unknown as ReceiptsCommand).triggersReceipts(slots.length, ...slots, String(this.ttlSeconds)).then(() => undefined, failed);
    } catch {
      failed(); // a call that could not even be issued
      return;
    }
    const tracked = call.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private keepLocally(slots: readonly string[]): void {
    const expires = Date.now() + this.ttlSeconds * 1000;
    for (const slot of slots) this.local.set(slot, expires);
  }

  private slot(tenantId: string, id: string): string {
    return `${this.prefix}:acc:${tenantId.length}:${tenantId}:${id}`;
  }
}
