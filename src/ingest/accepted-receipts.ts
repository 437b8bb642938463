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
  /** Receipts not yet handed to Redis: written together in one script call (see remember). */
  private pending: Set<string> | undefined;
  /** Whether a write of `pending` is scheduled (at the end of this turn, or when the call in flight settles). */
  private scheduled = false;
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
   * receipts go out in one script call at the end of the turn when no call is in flight; while
   * one is, the receipts of every request answered meanwhile wait for it to settle and go out
   * together in the next one, so a busy API writes many receipts per call. This process answers
   * from the receipts still waiting, so its own GET /events/{id} never misses them. If Redis is
   * down or refuses the call, they are kept in process memory instead, and for a second after a
   * failure the receipts go straight to memory. A receipt still waiting for its call is not on
   * Redis yet: another API process may answer 404 for that moment (a few ms).
   */
  remember(tenantId: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    if (this.backoff.usable()) {
      const pending = (this.pending ??= new Set());
      for (const id of ids) pending.add(this.slot(tenantId, id));
      if (!this.scheduled && this.inFlight.size === 0) {
        this.scheduled = true;
        setImmediate(this.writePending);
      }
      return;
    }
    this.keepLocally(ids.map((id) => this.slot(tenantId, id)));
  }

  async wasAccepted(tenantId: string, id: string): Promise<boolean> {
    const slot = this.slot(tenantId, id);
    if (this.pending?.has(slot)) return true;
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
    this.writePending();
    while (this.inFlight.size > 0 || this.pending) {
      await Promise.all([...this.inFlight]);
      this.writePending();
    }
  }

  /** Hands what is pending to Redis (or to memory while Redis is backed off). */
  private readonly writePending = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    const slots = [...pending];
    if (!this.backoff.usable()) {
      this.keepLocally(slots);
      return;
    }
    for (let i = 0; i < slots.length; i += MAX_KEYS_PER_CALL) this.send(slots.slice(i, i + MAX_KEYS_PER_CALL));
  };

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
    const tracked = call.finally(() => {
      this.inFlight.delete(tracked);
      // What was answered while this call was out goes now, in one call.
      if (this.inFlight.size === 0 && this.pending && !this.scheduled) this.writePending();
    });
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
