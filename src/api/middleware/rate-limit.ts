import ratelimit from "koa-ratelimit";
import type { Redis } from "ioredis";
import type { Context, Middleware, Next } from "koa";
import { RateLimitedError } from "../../errors";
import { addedHeader, addHeader } from "../response-headers";
import type { Logger } from "../../observability/logger";
import { RedisBackoff } from "../../redis-backoff";
import type { Principal } from "../../store/api-keys";
import { SharedWindowLimiter, type WindowVerdict } from "./shared-window";

/** The window of every limit, ms: limits are "requests per minute". */
export const RATE_WINDOW_MS = 60_000;

export interface RateLimitOptions {
  /** Requests per minute for a key without its own limit. */
  readonly defaultPerMinute: number;
  /** Shared counters across API processes; undefined = per-process memory counters. */
  readonly redis: Redis | undefined;
  /** Redis key namespace. */
  readonly prefix: string;
  readonly logger: Logger;
}

/**
 * Per-API-key rate limiting: on Redis (one counter per key and window shared by every API process,
 * see SharedWindowLimiter: one script call per event-loop turn for all requests of that turn) when
 * it is configured and reachable, on koa-ratelimit's in-process memory driver otherwise. If Redis
 * fails, the request is counted in memory instead, so ingest keeps working and the limit degrades
 * to "per key per API process" until Redis is back. Both keep a fixed window starting at the key's
 * first request. Answers 429 with Retry-After, the IETF draft headers (RateLimit-Policy,
 * RateLimit) and X-RateLimit-*.
 */
export function rateLimit(opts: RateLimitOptions): Middleware {
  const memory = new Map();
  const limiters = new Map<string, Middleware>();
  const shared = opts.redis ? new SharedWindowLimiter(opts.redis, RATE_WINDOW_MS) : undefined;
  let warned = 0;
  const redis = new RedisBackoff(opts.redis);

  const limitersFor = (max: number) => {
    const slot = String(max);
    let entry = limiters.get(slot);
    if (!entry) {
      const common = {
        duration: RATE_WINDOW_MS,
        max,
        // The limit is part of the id, so changing a key's override starts a fresh window.
        id: (ctx: Context) => `${(ctx.state.principal as Principal).keyId}:${max}`,
        throw: true,
        headers: { remaining: "X-RateLimit-Remaining", reset: "X-RateLimit-Reset", total: "X-RateLimit-Limit" },
      };
      entry = ratelimit({ ...common, driver: "memory", db: memory }) as Middleware;
      limiters.set(slot, entry);
    }
    return entry;
  };

  const admit = (ctx: Context, next: Next, max: number, verdict: WindowVerdict): Promise<void> => {
    const after = Math.max(1, setLimitHeaders(ctx, max, verdict.remaining, Math.ceil(verdict.resetAt / 1000)));
    if (!verdict.ok) throw limitedError(ctx, after);
    return next();
  };

  // Not async: a request this process's lease admits goes on without a promise of its own.
  return function limit(ctx: Context, next: Next): Promise<void> {
    const principal = ctx.state.principal as Principal | undefined;
    if (!principal) return next();
    const max = principal.rateLimit ?? opts.defaultPerMinute;
    // The limit is part of the key, so changing a key's override starts a fresh window.
    const slot = `${opts.prefix}:rl:${principal.keyId}:${max}`;
    if (shared && redis.usable()) {
      const leased = shared.takeLeased(slot, max);
      if (leased) return admit(ctx, next, max, leased);
    }
    return count(ctx, next, max, slot);
  };

  /** A request the lease cannot admit: counted in Redis with the rest of its turn, or in memory. */
  async function count(ctx: Context, next: Next, max: number, slot: string): Promise<void> {
    let downstream = false;
    const run = async (mw: Middleware) => {
      try {
        await mw(ctx, async () => {
          downstream = true;
          setDraftHeaders(ctx, max);
          await next();
        });
      } catch (err) {
        if (downstream) throw err;
        if ((err as { status?: number }).status === 429) {
          // Retry-After is the RateLimit header's t, so the two never disagree.
          throw limitedError(ctx, Math.max(1, setDraftHeaders(ctx, max)));
        }
        throw new LimiterFailure(err);
      }
    };
    if (shared && redis.usable()) {
      let verdict: Awaited<ReturnType<SharedWindowLimiter["take"]>> | undefined;
      try {
        verdict = await shared.take(slot, max);
      } catch (err) {
        // A Redis past its command deadline (frozen, overloaded) is skipped for a moment, so not
        // every request pays the deadline before falling back to memory.
        redis.failed();
        if (Date.now() - warned > 10_000) {
          warned = Date.now();
          opts.logger.warn({ err: String(err) }, "rate limiter cannot reach Redis; counting per process");
        }
      }
      if (verdict) return admit(ctx, next, max, verdict);
    }
    try {
      await run(limitersFor(max));
    } catch (err) {
      if (err instanceof LimiterFailure) throw err.cause;
      throw err;
    }
  }
}

/** The 429 of a limited request, carrying the rate-limit headers already added (the error handler sets them). */
function limitedError(ctx: Context, after: number): RateLimitedError {
  return new RateLimitedError(after, {
    "RateLimit-Policy": addedHeader(ctx, "RateLimit-Policy"),
    RateLimit: addedHeader(ctx, "RateLimit"),
    "X-RateLimit-Limit": addedHeader(ctx, "X-RateLimit-Limit"),
    "X-RateLimit-Remaining": addedHeader(ctx, "X-RateLimit-Remaining"),
    "X-RateLimit-Reset": addedHeader(ctx, "X-RateLimit-Reset"),
  });
}

class LimiterFailure extends Error {
  constructor(override readonly cause: unknown) {
    super("rate limiter failed");
  }
}

/**
 * Completes the headers koa-ratelimit's memory driver set (X-RateLimit-*): its reset as a whole
 * epoch second, and the draft headers of setLimitHeaders. Returns seconds until the reset.
 */
function setDraftHeaders(ctx: Context, max: number): number {
  const remaining = Number(ctx.response.get("X-RateLimit-Remaining"));
  const rawReset = ctx.response.get("X-RateLimit-Reset");
  const resetAt = rawReset === "" ? Number.NaN : Math.ceil(Number(rawReset));
  // The memory driver reports a fractional epoch second; every mode answers whole seconds.
  return setLimitHeaders(ctx, max, Number.isFinite(remaining) ? remaining : max, Number.isFinite(resetAt) ? resetAt : undefined);
}

/**
 * X-RateLimit-Limit/-Remaining/-Reset (epoch seconds), and RateLimit-Policy / RateLimit as in
 * draft-ietf-httpapi-ratelimit-headers (structured fields): quota q per window w seconds,
 * remaining r, seconds until reset t. Returns t.
 */
function setLimitHeaders(ctx: Context, max: number, remaining: number, resetAt: number | undefined): number {
  const t = resetAt === undefined ? Math.ceil(RATE_WINDOW_MS / 1000) : Math.max(0, Math.ceil(resetAt - Date.now() / 1000));
  addHeader(ctx, "X-RateLimit-Limit", String(max));
  addHeader(ctx, "X-RateLimit-Remaining", String(remaining));
  if (resetAt !== undefined) addHeader(ctx, "X-RateLimit-Reset", String(resetAt));
  addHeader(ctx, "RateLimit-Policy", `"per-key";q=${max};w=${RATE_WINDOW_MS / 1000}`);
  addHeader(ctx, "RateLimit", `"per-key";r=${remaining};t=${t}`);
  return t;
}
