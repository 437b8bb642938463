import { LRUCache } from "lru-cache";
import type { Redis } from "ioredis";
import { RedisBackoff } from "../redis-backoff";
import { Coalescer } from "../coalescer";

/** How long an accepted-but-not-yet-stored event answers `status: "queued"`, seconds. */
export const QUEUED_RECEIPT_SECONDS = 15 * 60;

/** Receipts are kept in one Redis set per tenant and bucket of this many seconds. */
export const RECEIPT_BUCKET_SECONDS = 60;

/**
 * Per receipt set KEYS[i]: SADD the ids of ARGV[i + 1] (separated by spaces) and let the set
 * expire at ARGV[1] (epoch seconds). The ids travel as one argument per set, so a call's cost on
 * the client does not grow with the number of arguments. Returns the number of ids.
 */
const RECEIPTS_SCRIPT = `
local n = 0
for i, key in ipairs(KEYS) do
  local ids = {}
  for id in string.gmatch(ARGV[i + 1], '%S+') do ids[#ids + 1] = id end
  for j = 1, #ids, 500 do redis.call('SADD', key, unpack(ids, j, math.min(j + 499, #ids))) end
  redis.call('EXPIREAT', key, ARGV[1])
  n = n + #ids
end
return n`;

/** 1 when ARGV[1] is in any of the sets KEYS. */
const RECEIPT_LOOKUP_SCRIPT = `
for _, key in ipairs(KEYS) do
  if redis.call('SISMEMBER', key, ARGV[1]) == 1 then return 1 end
end
return 0`;

type ReceiptsCommands = {
  triggersReceipts(numKeys: number, ...args: string[]): Promise<number>;
  triggersReceiptLookup(numKeys: number, ...args: string[]): Promise<number>;
};

/** Some of a tenant's pending receipts, written to its set in one script call. */
interface ReceiptPart {
  readonly tenantId: string;
  readonly ids: readonly string[];
}

/** Ids one script call writes at most (more pending go out in several calls). */
const MAX_IDS_PER_CALL = 5000;

/** Script calls start at most this often, ms: a busy API writes a call's worth of receipts (see remember). */
export const RECEIPTS_WRITE_INTERVAL_MS = 10;

/**
 * Remembers which event ids the API accepted recently, per tenant, so GET /events/{id} can answer
 * `queued` for an event that is still on SQS instead of a misleading 404. On Redis when configured
 * (shared by every API process), in bounded process memory otherwise. Best effort: losing a receipt
 * only turns a `queued` answer into a 404 until the worker stores the event.
 *
 * On Redis, the receipts of a tenant accepted in one RECEIPT_BUCKET_SECONDS bucket are members of
 * one set, which expires QUEUED_RECEIPT_SECONDS after its bucket ends: every receipt answers for
 * 15 to 16 minutes. A set member costs Redis a fraction of a key with its own TTL, and a call
 * writes a whole turn's receipts as a few arguments. A lookup asks the 17 buckets that can still
 * hold a receipt, in one script call.
 */
export class AcceptedReceipts {
  /** Bounded: past 200 000 receipts the least recently used go first (not all at once). */
  private readonly local = new LRUCache<string, number>({ max: 200_000 });
  /** Receipts not yet handed to Redis: written together in one script call (see remember). */
  private readonly writes: Coalescer<ReceiptPart>;
  /** A Redis that just failed (or missed its deadline) is not asked every turn: receipts stay in memory meanwhile. */
  private readonly backoff: RedisBackoff;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly ttlSeconds = QUEUED_RECEIPT_SECONDS,
  ) {
    redis?.defineCommand("triggersReceipts", { lua: RECEIPTS_SCRIPT });
    redis?.defineCommand("triggersReceiptLookup", { lua: RECEIPT_LOOKUP_SCRIPT });
    this.backoff = new RedisBackoff(redis);
    this.writes = new Coalescer<ReceiptPart>({
      lingerMs: RECEIPTS_WRITE_INTERVAL_MS,
      minIntervalMs: RECEIPTS_WRITE_INTERVAL_MS,
      maxInFlight: 1,
      flush: (parts) => this.write(parts),
    });
  }

  /**
   * Records receipts without holding up the caller: the 202 does not wait for them. On Redis, the
   * receipts go out in one script call, at the end of the turn on a quiet API. Calls start at most
   * every RECEIPTS_WRITE_INTERVAL_MS and one at a time: the receipts of every request answered
   * meanwhile wait and go out together, so a busy API writes a hundred or more per call (each
   * call costs the API and Redis far more than a receipt in it). This process answers from the
   * receipts still waiting, so its own GET /events/{id} never misses them. If Redis is down or
   * refuses the call, they are kept in process memory instead, and for a second after a failure
   * the receipts go straight to memory. A receipt still waiting for its call is not on Redis yet:
   * another API process may answer 404 for that moment (10 ms, and the call's own time).
   */
  remember(tenantId: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    if (this.backoff.usable()) {
      this.writes.add({ tenantId, ids });
      return;
    }
    this.keepLocally(tenantId, ids);
  }

  async wasAccepted(tenantId: string, id: string): Promise<boolean> {
    for (const p of this.writes.pending()) if (p.tenantId === tenantId && p.ids.includes(id)) return true;
    const local = this.local.get(this.localSlot(tenantId, id));
    if (local !== undefined && local > Date.now()) return true;
    if (!this.backoff.usable()) return false;
    const now = Date.now();
    const bucket = this.bucketOf(now);
    const oldest = this.bucketOf(now - this.ttlSeconds * 1000) - 1;
    const keys: string[] = [];
    for (let b = bucket; b >= oldest; b--) keys.push(this.setKey(tenantId, b));
    try {
      return (await (this.redis as unknown as ReceiptsCommands).triggersReceiptLookup(keys.length, ...keys, id)) === 1;
    } catch {
      return false;
    }
  }

  /** Resolves once every receipt recorded so far has been written (to Redis or to memory). */
  drain(): Promise<void> {
    return this.writes.drain();
  }

  /** Hands receipts to Redis, a tenant's together, in as few script calls as MAX_IDS_PER_CALL allows (to memory while Redis is backed off). */
  private write(parts: readonly ReceiptPart[]): Promise<void> | void {
    if (!this.backoff.usable()) {
      for (const { tenantId, ids } of parts) this.keepLocally(tenantId, ids);
      return;
    }
    const byTenant = new Map<string, string[]>();
    for (const { tenantId, ids } of parts) {
      const list = byTenant.get(tenantId);
      if (list) for (const id of ids) list.push(id);
      else byTenant.set(tenantId, [...ids]);
    }
    const bucket = this.bucketOf(Date.now());
    // The set outlives its bucket's end by the TTL, so its last receipt still answers for that long.
    const expiresAt = String((bucket + 1) * RECEIPT_BUCKET_SECONDS + this.ttlSeconds);
    const calls: Promise<void>[] = [];
    let call: ReceiptPart[] = [];
    let count = 0;
    for (const [tenantId, all] of byTenant) {
      for (let i = 0; i < all.length; i += MAX_IDS_PER_CALL) {
        const ids = all.length <= MAX_IDS_PER_CALL ? all : all.slice(i, i + MAX_IDS_PER_CALL);
        if (count + ids.length > MAX_IDS_PER_CALL) {
          calls.push(this.send(call, bucket, expiresAt));
          call = [];
          count = 0;
        }
        call.push({ tenantId, ids });
        count += ids.length;
      }
    }
    if (call.length > 0) calls.push(this.send(call, bucket, expiresAt));
    return Promise.all(calls).then(() => undefined);
  }

  /** One script call writing `parts` into their tenants' sets of `bucket`; on failure they are kept in memory. */
  private send(parts: readonly ReceiptPart[], bucket: number, expiresAt: string): Promise<void> {
    const failed = () => {
      this.backoff.failed();
      for (const { tenantId, ids } of parts) this.keepLocally(tenantId, ids);
    };
    const keys = parts.map((p) => this.setKey(p.tenantId, bucket));
    const lists = parts.map((p) => p.ids.join(" "));
    try {
      return (this.redis as unknown as ReceiptsCommands).triggersReceipts(keys.length, ...keys, expiresAt, ...lists).then(() => undefined, failed);
    } catch {
      failed(); // a call that could not even be issued
      return Promise.resolve();
    }
  }

  private keepLocally(tenantId: string, ids: readonly string[]): void {
    const expires = Date.now() + this.ttlSeconds * 1000;
    for (const id of ids) this.local.set(this.localSlot(tenantId, id), expires);
  }

  private bucketOf(ms: number): number {
    return Math.floor(ms / 1000 / RECEIPT_BUCKET_SECONDS);
  }

  /** The set of a tenant's receipts of one bucket; the tenant's length keeps ("a:b", c) and ("a", "b:c") apart. */
  private setKey(tenantId: string, bucket: number): string {
    return `${this.prefix}:acc:${tenantId.length}:${tenantId}:${bucket}`;
  }

  private localSlot(tenantId: string, id: string): string {
    return `${tenantId.length}:${tenantId}:${id}`;
  }
}
