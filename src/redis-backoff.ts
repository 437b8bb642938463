import type { Redis } from "ioredis";

/** After a failed Redis call, how long a caller stays on its fallback before trying Redis again, ms. */
export const REDIS_BACKOFF_MS = 1000;

/**
 * Whether a fast path should use Redis now: the client is connected, and no call of this caller
 * failed (or missed its command deadline) in the last REDIS_BACKOFF_MS. A frozen Redis then costs
 * one deadline per second per caller, not one per request. Each caller keeps its own instance.
 */
export class RedisBackoff {
  private skipUntil = 0;

  constructor(private readonly redis: Redis | undefined) {}

  /** True when Redis is configured, ready and not backed off. */
  usable(): boolean {
    return this.redis !== undefined && this.redis.status === "ready" && Date.now() >= this.skipUntil;
  }

  /** Records a failed call: Redis is skipped for REDIS_BACKOFF_MS. */
  failed(): void {
    this.skipUntil = Date.now() + REDIS_BACKOFF_MS;
  }
}
