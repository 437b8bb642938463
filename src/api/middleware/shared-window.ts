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
  /** Units (requests, or a request's cost) left in the window after this one. */
  readonly remaining: number;
  /** When the window ends, epoch ms. */
  readonly resetAt: number;
}

interface Waiter {
  /** Units this request costs (1 for a request limit). */
  readonly cost: number;
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
  /** The slot's count in Redis when the lease was last added to (the lease included). */
  count: number;
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
 * A process has at most one call out per slot: requests that find no lease while a call is out
 * wait for it, are served first from the lease it brings back, and only the rest go in the next
 * call. What a call takes is added to the lease the process holds, never put in its place, so no
 * request Redis counted for this process goes unused while the process keeps receiving requests.
 *
 * A request may cost more than one unit (`cost`: the delivery-rows budget charges a request its
 * events times the rows each writes). It is admitted whole or refused whole; units Redis granted
 * that a refused request could not use join the lease, so a later, cheaper request uses them.
 *
 * Precision across N processes: the counter is atomic in Redis and counts leased requests as
 * taken, so N processes together never admit more than `max` per window (no overshoot). A lease
 * left unused when its window ends is lost, so a key whose traffic stops or moves to other
 * processes may be admitted up to N × leaseSize(max) (N % of the limit) fewer than `max` in a
 * window, plus, with costs, less than the largest cost per process (a remainder too small for it). As with any fixed window, a client can fit up to 2 × max into a span of one window
 * length straddling two windows.
 */
export class SharedWindowLimiter {
  /** Requests waiting for a call, per slot (including slots whose call is out). */
  private pending = new Map<string, Slot>();
  /** Slots with a call out. */
  private readonly inFlight = new Set<string>();
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
   * verdict, or undefined when the lease is used up, expired or absent, or requests wait before
   * this one (then `take`).
   */
  takeLeased(slot: string, max: number, cost = 1): WindowVerdict | undefined {
    const lease = this.leases.get(slot);
    if (lease === undefined || lease.max !== max || lease.left < cost || lease.resetAt <= Date.now() || this.pending.has(slot)) return undefined;
    return useLease(lease, max, cost);
  }

  /** Counts one request costing `cost` units against `slot` (a Redis key) with limit `max`. Rejects when Redis fails or misses its deadline. */
  take(slot: string, max: number, cost = 1): Promise<WindowVerdict> {
    const leased = this.takeLeased(slot, max, cost);
    if (leased) return Promise.resolve(leased);
    return new Promise<WindowVerdict>((resolve, reject) => {
      let s = this.pending.get(slot);
      if (!s) {
        s = { max, waiters: [] };
        this.pending.set(slot, s);
      } else if (s.max !== max) {
        // One slot has one limit (the middleware names the slot after it); a changed one wins.
        s = { max, waiters: s.waiters };
        this.pending.set(slot, s);
      }
      s.waiters.push({ cost, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Sends, in one call, every slot that has waiters and no call out; the others wait for theirs. */
  private flush(): void {
    this.scheduled = false;
    let batch: Map<string, Slot> | undefined;
    for (const [slot, s] of this.pending) {
      if (this.inFlight.has(slot)) continue;
      (batch ??= new Map()).set(slot, s);
    }
    if (!batch) return;
    for (const slot of batch.keys()) {
      this.pending.delete(slot);
      this.inFlight.add(slot);
    }
    void this.send(batch);
  }

  private async send(batch: Map<string, Slot>): Promise<void> {
    const keys = [...batch.keys()];
    const args: string[] = [String(this.windowMs)];
    for (const s of batch.values()) args.push(String(s.max), String(s.waiters.reduce((sum, w) => sum + w.cost, 0) + leaseSize(s.max)));
    let results: Array<[number, number, number]>;
    try {
      results = await (this.redis as unknown as TakeCommand).triggersRateTake(keys.length, ...keys, ...args);
    } catch (err) {
      for (const [slot, s] of batch) {
        this.inFlight.delete(slot);
        for (const w of s.waiters) w.reject(err);
        if (this.pending.has(slot)) this.schedule();
      }
      return;
    }
    const now = Date.now();
    let i = 0;
    for (const [slot, s] of batch) {
      this.inFlight.delete(slot);
      const [admitted, count, ttl] = results[i++]!.map(Number) as [number, number, number];
      const resetAt = now + ttl;
      // In arrival order, each waiter that the units still granted cover is admitted whole.
      let left = admitted;
      for (const w of s.waiters) {
        const ok = w.cost <= left;
        if (ok) left -= w.cost;
        w.resolve({ ok, remaining: Math.max(0, s.max - count + left), resetAt });
      }
      // What the waiters did not use joins this process's lease until the window ends.
      const lease = this.addLease(slot, s.max, left, count, resetAt, now);
      // Requests that arrived while the call was out: the lease serves them first, in order.
      const waiting = this.pending.get(slot);
      if (!waiting) continue;
      let served = 0;
      if (lease && waiting.max === lease.max) {
        while (served < waiting.waiters.length && lease.left >= waiting.waiters[served]!.cost) {
          const w = waiting.waiters[served++]!;
          w.resolve(useLease(lease, waiting.max, w.cost));
        }
      }
      if (served === waiting.waiters.length) this.pending.delete(slot);
      else {
        if (served > 0) waiting.waiters.splice(0, served);
        this.schedule();
      }
    }
  }

  /** Adds `left` requests to the slot's lease (a new lease when the held one is used up, expired or for another limit). */
  private addLease(slot: string, max: number, left: number, count: number, resetAt: number, now: number): Lease | undefined {
    const held = this.leases.get(slot);
    if (held && held.max === max && held.resetAt > now && held.left > 0) {
      // Same window: Redis's count only grows within it and already includes the held lease.
      held.left += left;
      held.count = count;
      return held;
    }
    if (left <= 0) {
      this.leases.delete(slot);
      return undefined;
    }
    if (this.leases.size > 10_000) this.leases.clear(); // bounded; a dropped lease only under-admits
    const lease: Lease = { max, left, count, resetAt };
    this.leases.set(slot, lease);
    return lease;
  }
}

/** Admits one request costing `cost` from a lease that has at least that left. */
function useLease(lease: Lease, max: number, cost: number): WindowVerdict {
  lease.left -= cost;
  return { ok: true, remaining: Math.max(0, max - lease.count + lease.left), resetAt: lease.resetAt };
}
