import type { Redis } from "ioredis";
import type { PrismaClient } from "../generated/prisma/client";
import { findByIdempotencyKey } from "../store/events/get-event";

export type Reservation = "new" | "replay" | "conflict";

/** How long Redis remembers an idempotency key, seconds. Postgres remembers it as long as the row lives. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/**
 * Decides whether a send with an Idempotency-Key is new, a replay of the same body, or a reuse of
 * the key with another body. Redis (SET NX) makes concurrent sends agree and answers replays
 * without touching Postgres; a key Redis has not seen is checked against Postgres's unique
 * (tenant, key), the durable record. Without Redis an in-process map stands in for it.
 */
export class IdempotencyGuard {
  private readonly local = new Map<string, string>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly redis: Redis | undefined,
    private readonly prefix: string,
    private readonly onRedisError: (err: unknown) => void = () => undefined,
    private readonly onDatabaseError: (err: unknown) => void = () => undefined,
  ) {}

  async reserve(tenantId: string, key: string, bodyHash: string): Promise<Reservation> {
    const slot = this.slot(tenantId, key);
    const seen = await this.claim(slot, bodyHash);
    if (seen !== null) return seen === bodyHash ? "replay" : "conflict";
    let stored: { body_hash: string } | null;
    try {
      stored = await findByIdempotencyKey(this.prisma, tenantId, key);
    } catch (err) {
      // Postgres unreachable: the claim above (Redis, or this process) already settled concurrent
      // sends, and the id is derived from the key, so the worker's insert still keeps one row.
      // Only a reuse of a key older than Redis's memory with another body goes undetected.
      this.onDatabaseError(err);
      return "new";
    }
    if (stored === null) return "new";
    return stored.body_hash === bodyHash ? "replay" : "conflict";
  }

  /** Forgets a claim whose send failed, so a retry with another body is not refused for a send that never happened. */
  async release(tenantId: string, key: string, bodyHash: string): Promise<void> {
    const slot = this.slot(tenantId, key);
    if (this.local.get(slot) === bodyHash) this.local.delete(slot);
    if (!this.redis) return;
    try {
      // Delete only our own claim.
      await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, slot, bodyHash);
    } catch (err) {
      this.onRedisError(err);
    }
  }

  /** The Redis key (and local map key) of one tenant's idempotency key; the length prefix keeps tenants apart. */
  private slot(tenantId: string, key: string): string {
    return `${this.prefix}:idem:${tenantId.length}:${tenantId}:${key}`;
  }

  /** Returns the hash already claimed for the slot, or null if this call claimed it. */
  private async claim(slot: string, bodyHash: string): Promise<string | null> {
    if (this.redis && this.redis.status === "ready") {
      try {
        const set = await this.redis.set(slot, bodyHash, "EX", IDEMPOTENCY_TTL_SECONDS, "NX");
        if (set === "OK") return null;
        const existing = await this.redis.get(slot);
        return existing ?? null;
      } catch (err) {
        this.onRedisError(err); // degrade to the in-process map and Postgres
      }
    }
    const existing = this.local.get(slot);
    if (existing !== undefined) return existing;
    if (this.local.size >= 100_000) this.local.clear(); // bounded memory; Postgres stays authoritative
    this.local.set(slot, bodyHash);
    return null;
  }
}
