import type { Redis } from "ioredis";

/**
 * One Lua call for every rate-limit slot touched in one event-loop turn. Per slot (KEYS[i]) it
 * admits up to the requested count (ARGV pairs: max, wanted) while the slot's counter stays within
 * max, starts the slot's window (PEXPIRE ARGV[1] ms) on its first request, and returns, per slot,
 * {admitted, count after, ms until the window ends}. Rejected requests are not counted.
 */
const TAKE_SCRIPT = `
local out = {}
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local max = tonumber(ARGV[i * 2])
  local wanted = tonumber(ARGV[i * 2 + 1])
  local count = tonumber(redis.call('GET', key) or '0')
  local admitted = math.max(0, math.min(wanted, max - count))
  if admitted > 0 then
    count = redis.call('INCRBY', key, admitted)
    if count == admitted then redis.call('PEXPIRE', key, window) end
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then ttl = window end
  out[i] = {admitted, count, ttl}
end
return out`;

export interface WindowVerdict {
  readonly ok: boolean;
  /** Requests left in the window after this one. */
  readonly remaining: number;
  /** When the window ends, epoch ms. */
  readonly resetAt: number;
}

interface Waiter {
  readonly resolve: (v: WindowVerdict) => void;
  readonly reject: (err: unknown) => void;
}

interface Slot {
  readonly max: number;
  readonly waiters: Waiter[];
}

/** Requests this process took from a slot's window in Redis and has not used yet. */
interface Lease {
  readonly max: number;
  left: number;
  /** The slot's count in Redis when the lease was taken (the lease included). */
  readonly count: number;
  readonly resetAt: number;
}

/** Requests one Redis call takes ahead for this process: 1% of the limit, 1 to 1 000. */
export function leaseSize(max: number): number {
  return Math.max(1, Math.min(1000, Math.floor(max / 100)));
}

type TakeCommand = { triggersRateTake(numKeys: number, ...args: string[]): Promise<Array<[number, number, number]>> };

/**
 * A per-key request counter shared by every API process: one counter per key in Redis with a
 * fixed window that starts at the key's first request (the window koa-ratelimit's memory driver
 * keeps too). Each process takes requests from the window in leases of `leaseSize(max)` (1 % of
 * the limit, at most 1 000; 1 for limits under 200) and admits from its lease without asking Redis
 * again. The requests that find no lease in one event-loop turn are counted together: every slot
 * they touch goes to Redis in one script call (instead of koa-ratelimit's five sorted-set commands
 * per request), and each request still gets its own verdict, in arrival order.
 *
 * Precision across N processes: the counter is atomic in Redis and counts leased requests as
 * taken, so N processes together never admit more than `max` per window (no overshoot). A lease
 * left unused when its window ends is lost, so a key busy on N processes may be admitted up to
 * N × leaseSize(max) (N % of the limit) fewer than `max` in a window. As with any fixed window, a
 * client can fit up to 2 × max into a span of one window length straddling two windows.
 */
export class SharedWindowLimiter {
  private pending = new Map<string, Slot>();
  private scheduled = false;
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
  ) {
    redis.defineCommand("triggersRateTake", { lua: TAKE_SCRIPT });
  }

  /**
   * Counts one request against `slot` from this process's lease, without asking Redis: the
   * verdict, or undefined when the lease is used up, expired or absent (then `take`).
   */
  takeLeased(slot: string, max: number): WindowVerdict | undefined {
    const lease = this.leases.get(slot);
    if (lease === undefined || lease.max !== max || lease.left <= 0 || lease.resetAt <= Date.now() || this.pending.has(slot)) return undefined;
    lease.left--;
    return { ok: true, remaining: Math.max(0, max - lease.count + lease.left), resetAt: lease.resetAt };
  }

  /** Counts one request against `slot` (a Redis key) with limit `max`. Rejects when Redis fails or misses its deadline. */
  take(slot: string, max: number): Promise<WindowVerdict> {
    const leased = this.takeLeased(slot, max);
    if (leased) return Promise.resolve(leased);
    return new Promise<WindowVerdict>((resolve, reject) => {
      let s = this.pending.get(slot);
      if (!s || s.max !== max) {
        if (s) this.flushSlot(slot, s); // a changed limit in the same turn: count what is pending first
        s = { max, waiters: [] };
        this.pending.set(slot, s);
      }
      s.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flushSlot(slot: string, s: Slot): void {
    this.pending.delete(slot);
    void this.send(new Map([[slot, s]]));
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size > 0) void this.send(batch);
  }

  private async send(batch: Map<string, Slot>): Promise<void> {
    const keys = [...batch.keys()];
    const args: string[] = [String(this.windowMs)];
    for (const s of batch.values()) args.push(String(s.max), String(s.waiters.length + leaseSize(s.max)));
    let results: Array<[number, number, number]>;
    try {
      results = await (this.redis as unknown as TakeCommand).triggersRateTake(keys.length, ...keys, ...args);
    } catch (err) {
      for (const s of batch.values()) for (const w of s.waiters) w.reject(err);
      return;
    }
    const now = Date.now();
    let i = 0;
    for (const [slot, s] of batch) {
      const [admitted, count, ttl] = results[i++]!.map(Number) as [number, number, number];
      const resetAt = now + ttl;
      // What the waiters do not use is this process's lease until the window ends.
      const left = Math.max(0, admitted - s.waiters.length);
      if (left > 0) {
        if (this.leases.size > 10_000) this.leases.clear(); // bounded; a dropped lease only under-admits
        this.leases.set(slot, { max: s.max, left, count, resetAt });
      } else this.leases.delete(slot);
      s.waiters.forEach((w, j) => {
        const ok = j < admitted;
        w.resolve({ ok, remaining: ok ? Math.max(0, s.max - count + (admitted - j - 1)) : 0, resetAt });
      });
    }
  }
}
