import { LRUCache } from "lru-cache";
import type { Redis } from "ioredis";
import type { PrismaClient } from "../generated/prisma/client";
import type { QueuedEvent } from "../domain/queued-event";
import { findStoredKey, storedBodyHashes } from "../store/events/idempotency-keys";

/**
 * The verdict on a send with an Idempotency-Key. `receivedAt` is the time to answer: the first
 * send's for a replay. `shared` is false when the claim was made without Redis (down, or not
 * configured): other API processes cannot see it, so the 202 is "accepted, pending the worker's
 * uniqueness check" (see `findIdempotencyLosers`).
 */
export type Reservation =
  | { readonly kind: "new"; readonly receivedAt: string; readonly shared: boolean }
  | { readonly kind: "replay"; readonly receivedAt: string }
  | { readonly kind: "conflict" };

/**
 * How long the fast path remembers a claim, seconds. It only has to cover the time an event spends
 * between the API and Postgres (and let quick retries skip a lookup): Postgres remembers the key
 * as long as the row lives, and wins over the fast path, so a lost or expired claim is harmless.
 * It is also the window the claim budgets count in.
 */
export const IDEMPOTENCY_TTL_SECONDS = 3600;

/**
 * How many claims the fast path may keep in Redis (whose policy is noeviction, for BullMQ), per
 * TTL window: a tenant's claims (IDEMPOTENCY_CLAIMS_PER_TENANT) and every tenant's together
 * (IDEMPOTENCY_CLAIMS_TOTAL). Past either, new keys are claimed in process memory only (as while
 * Redis is down) until the window turns. Live claims span at most 2 windows, each ≈ 180–450 B.
 */
export interface IdempotencyLimits {
  /** Claim lifetime and budget window, seconds; default IDEMPOTENCY_TTL_SECONDS. */
  readonly ttlSeconds?: number;
  /** Claims one tenant may make in Redis per window. */
  readonly claimsPerTenant: number;
  /** Claims all tenants together may make in Redis per window. */
  readonly claimsTotal: number;
}

/** Entries of the in-process fast path at most (without Redis). */
const LOCAL_MAX = 100_000;

/**
 * One round trip: the existing claim if any; else, within the tenant's and the global budget for
 * this window, a new claim (and both budgets' counts); else nothing. Returns {0, existing} | {1} |
 * {2} (over a budget). KEYS: claim, tenant counter, global counter. ARGV: value, ttl seconds,
 * tenant budget, global budget.
 */
const CLAIM_SCRIPT = `
local existing = redis.call('GET', KEYS[1])
if existing then return {0, existing} end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then return {2} end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return {2} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 2, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2]) * 2) end
end
return {1}`;

/** A claim's value: the body hash and the received_at the first send answered. */
const encodeClaim = (bodyHash: string, receivedAt: string) => `${bodyHash}|${receivedAt}`;
function decodeClaim(value: string): { hash: string; receivedAt: string | null } {
  const bar = value.indexOf("|");
  return bar < 0 ? { hash: value, receivedAt: null } : { hash: value.slice(0, bar), receivedAt: value.slice(bar + 1) };
}

/**
 * Decides whether a send with an Idempotency-Key is new, a replay of the same body, or a reuse of
 * the key with another body. Postgres's unique (tenant, key) is the durable record and always wins:
 * every keyed send looks its key up there (one indexed lookup), and when the fast path disagrees
 * with Postgres the fast path is corrected. The fast path (Redis SET NX, or an in-process map
 * without Redis) settles concurrent sends of a key whose event is still on its way to Postgres.
 */
export class IdempotencyGuard {
  /** Bounded memory (LOCAL_MAX claims, least recently used evicted first); Postgres stays authoritative. */
  private readonly local = new LRUCache<string, string>({ max: LOCAL_MAX });
  private readonly ttlSeconds: number;
  private readonly claimsPerTenant: string;
  private readonly claimsTotal: string;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly onRedisError: (err: unknown) => void = () => undefined,
    private readonly onDatabaseError: (err: unknown) => void = () => undefined,
    limits: IdempotencyLimits,
  ) {
    this.ttlSeconds = limits.ttlSeconds ?? IDEMPOTENCY_TTL_SECONDS;
    this.claimsPerTenant = String(limits.claimsPerTenant);
    this.claimsTotal = String(limits.claimsTotal);
    redis?.defineCommand("triggersIdemClaim", { numberOfKeys: 3, lua: CLAIM_SCRIPT });
  }

  async reserve(tenantId: string, key: string, bodyHash: string, receivedAt: string): Promise<Reservation> {
    const slot = this.slot(tenantId, key);
    const mine = encodeClaim(bodyHash, receivedAt);
    const { seen, shared } = await this.claim(tenantId, slot, mine);
    let stored: { body_hash: string; received_at: string } | null;
    try {
      stored = await findStoredKey(this.prisma, tenantId, key);
    } catch (err) {
      // Postgres unreachable: the fast path alone settles the send, and the id is derived from the
      // key, so the worker's insert still keeps one row (and reports a loser, see findIdempotencyLosers).
      this.onDatabaseError(err);
      stored = null;
    }
    if (stored !== null) {
      // The durable record wins; make the fast path agree with it so later sends do too.
      const record = encodeClaim(stored.body_hash, stored.received_at);
      if ((seen ?? mine) !== record) await this.overwrite(slot, record, shared);
      return stored.body_hash === bodyHash ? { kind: "replay", receivedAt: stored.received_at } : { kind: "conflict" };
    }
    if (seen === null) return { kind: "new", receivedAt, shared };
    const claim = decodeClaim(seen);
    return claim.hash === bodyHash ? { kind: "replay", receivedAt: claim.receivedAt ?? receivedAt } : { kind: "conflict" };
  }

  /** Forgets a claim whose send failed, so a retry with another body is not refused for a send that never happened. */
  async release(tenantId: string, key: string, bodyHash: string, receivedAt: string): Promise<void> {
    const slot = this.slot(tenantId, key);
    const mine = encodeClaim(bodyHash, receivedAt);
    if (this.local.get(slot) === mine) this.local.delete(slot);
    if (!this.redis) return;
    try {
      // Delete only our own claim.
      await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, slot, mine);
    } catch (err) {
      this.onRedisError(err);
    }
  }

  /** Drops every in-process claim, as a restart does. For tests and operators; Postgres keeps the durable record. */
  forgetLocalClaims(): void {
    this.local.clear();
  }

  /** The Redis key (and local map key) of one tenant's idempotency key; the length prefix keeps tenants apart. */
  private slot(tenantId: string, key: string): string {
    return `${this.prefix}:idem:${tenantId.length}:${tenantId}:${key}`;
  }

  /** Claims the slot: `seen` is the value already there (null if this call claimed it); `shared` tells whether Redis held the claim. */
  private async claim(tenantId: string, slot: string, value: string): Promise<{ seen: string | null; shared: boolean }> {
    if (this.redis && this.redis.status === "ready") {
      try {
        const window = Math.floor(Date.now() / (this.ttlSeconds * 1000));
        const counter = `${this.prefix}:idemn:${tenantId.length}:${tenantId}:${window}`;
        const total = `${this.prefix}:idemg:${window}`;
        const claim = (this.redis as unknown as ClaimCommand).triggersIdemClaim;
        const [verdict, existing] = await claim.call(this.redis, slot, counter, total, value, String(this.ttlSeconds), this.claimsPerTenant, this.claimsTotal);
        if (verdict === 0) return { seen: existing ?? null, shared: true };
        if (verdict === 1) return { seen: null, shared: true };
        // Over the tenant's or the global budget: claim in this process only, like while Redis is down.
      } catch (err) {
        this.onRedisError(err); // degrade to the in-process map and Postgres
      }
    }
    const existing = this.local.get(slot);
    if (existing !== undefined) return { seen: existing, shared: false };
    this.local.set(slot, value);
    return { seen: null, shared: false };
  }

  /** Replaces the fast path's claim (in Redis only where the claim was, so the tenant's budget holds) with the durable record's. */
  private async overwrite(slot: string, value: string, shared: boolean): Promise<void> {
    if (this.local.has(slot)) this.local.set(slot, value);
    if (shared && this.redis && this.redis.status === "ready") {
      try {
        await this.redis.set(slot, value, "EX", this.ttlSeconds);
      } catch (err) {
        this.onRedisError(err);
      }
    }
  }
}

type ClaimCommand = {
  triggersIdemClaim(slot: string, counter: string, total: string, value: string, ttl: string, budget: string, totalBudget: string): Promise<[number, string?]>;
};

/**
 * The keyed events of a batch the insert skipped although their body differs from the one stored
 * under their (tenant, key): two bodies were 202'd for one key without a shared fast path (Redis
 * down, several API processes), and the other reached Postgres first. The worker must not drop
 * them silently. One indexed query, only for batches in which the insert skipped keyed rows.
 */
export async function findIdempotencyLosers(prisma: PrismaClient, events: readonly QueuedEvent[]): Promise<Set<QueuedEvent>> {
  const keyed = events.filter((e) => e.idempotency_key !== null);
  if (keyed.length === 0) return new Set();
  const rows = await storedBodyHashes(prisma, keyed.map((e) => ({ tenantId: e.tenant_id, key: e.idempotency_key! })));
  const storedHash = new Map(rows.map((r) => [`${r.tenant_id.length}:${r.tenant_id}:${r.idempotency_key}`, r.body_hash]));
  return new Set(
    keyed.filter((e) => {
      const hash = storedHash.get(`${e.tenant_id.length}:${e.tenant_id}:${e.idempotency_key}`);
      return hash !== undefined && hash !== e.body_hash;
    }),
  );
}
