import type { Redis } from "ioredis";
import type { Context } from "koa";
import { DeliveryRateLimitedError } from "../../errors";
import type { Logger } from "../../observability/logger";
import { RedisBackoff } from "../../redis-backoff";
import type { Principal } from "../../store/api-keys";
import { addHeader } from "../response-headers";
import { SharedWindowLimiter, type WindowVerdict } from "./shared-window";
import { RATE_WINDOW_MS } from "./rate-limit";

export interface DeliveryBudgetOptions {
  /** Rows a tenant's accepted events may write per minute (DELIVERY_ROWS_PER_MINUTE_PER_TENANT). */
  readonly perMinute: number;
  /** Shared counters across API processes; undefined = per-process memory counters. */
  readonly redis: Redis | undefined;
  /** Redis key namespace. */
  readonly prefix: string;
  readonly logger: Logger;
}

/** Tenants' memory windows kept at most while Redis is down; past it they start over (only under-counts). */
const MAX_MEMORY_WINDOWS = 10_000;

/**
 * The rows an event of this principal's tenant writes when stored: its own row and one delivery
 * per live subscription (at least `default`). The count is the one the key cache read with the key
 * (API_KEY_CACHE_MS), not a filter match: an upper bound that costs nothing per request.
 */
export function rowsPerEvent(principal: Principal): number {
  return 1 + Math.max(1, principal.liveSubscriptions);
}

/**
 * The per-tenant delivery-rows budget of POST /events and POST /events/batch: a request of n
 * events costs n × rowsPerEvent (at most the whole budget) and is admitted or refused whole. The
 * window is the per-key limiter's (SharedWindowLimiter: one counter per tenant in Redis, fixed
 * one-minute window from the tenant's first request, leases of 1 % taken ahead per process), so a
 * request the process's lease covers costs one local subtraction. While Redis fails the tenant is
 * counted in this process's memory (the budget then holds per API process) until Redis answers
 * again. Past the budget: 429 delivery_rate_limited with Retry-After and the "delivery-rows"
 * RateLimit-Policy / RateLimit headers.
 */
export class DeliveryBudget {
  private readonly shared: SharedWindowLimiter | undefined;
  private readonly redis: RedisBackoff;
  private readonly memory = new Map<string, { used: number; resetAt: number }>();
  /** Each cached principal's slot and rows per event, so the hot path builds no string (a principal lives API_KEY_CACHE_MS). */
  private readonly byPrincipal = new WeakMap<Principal, { readonly slot: string; readonly rows: number }>();
  private warned = 0;

  constructor(private readonly opts: DeliveryBudgetOptions) {
    this.shared = opts.redis ? new SharedWindowLimiter(opts.redis, RATE_WINDOW_MS) : undefined;
    this.redis = new RedisBackoff(opts.redis);
  }

  /**
   * Charges `events` events of `principal`'s tenant. Undefined when this process's lease admitted
   * them (no promise on the hot path); otherwise a promise that settles once counted. Throws (or
   * rejects with) DeliveryRateLimitedError past the budget.
   */
  charge(ctx: Context, principal: Principal, events: number): Promise<void> | undefined {
    const max = this.opts.perMinute;
    let known = this.byPrincipal.get(principal);
    if (!known) {
      known = { slot: `${this.opts.prefix}:rows:${max}:${principal.tenantId}`, rows: rowsPerEvent(principal) };
      this.byPrincipal.set(principal, known);
    }
    const slot = known.slot;
    const cost = Math.min(max, events * known.rows);
    if (this.shared && this.redis.usable()) {
      const leased = this.shared.takeLeased(slot, max, cost);
      if (leased) return undefined;
      return this.shared.take(slot, max, cost).then(
        (verdict) => this.verdict(ctx, verdict),
        (err: unknown) => {
          // A Redis past its command deadline is skipped for a moment (as the key limiter does).
          this.redis.failed();
          if (Date.now() - this.warned > 10_000) {
            this.warned = Date.now();
            this.opts.logger.warn({ err: String(err) }, "delivery-rows budget cannot reach Redis; counting per process");
          }
          this.verdict(ctx, this.takeMemory(slot, max, cost));
        },
      );
    }
    this.verdict(ctx, this.takeMemory(slot, max, cost));
    return undefined;
  }

  /** The same fixed window, in this process only. */
  private takeMemory(slot: string, max: number, cost: number): WindowVerdict {
    const now = Date.now();
    let w = this.memory.get(slot);
    if (!w || w.resetAt <= now) {
      if (this.memory.size >= MAX_MEMORY_WINDOWS) this.memory.clear();
      w = { used: 0, resetAt: now + RATE_WINDOW_MS };
      this.memory.set(slot, w);
    }
    const ok = w.used + cost <= max;
    if (ok) w.used += cost;
    return { ok, remaining: max - w.used, resetAt: w.resetAt };
  }

  private verdict(ctx: Context, v: WindowVerdict): void {
    if (v.ok) return;
    const t = Math.max(1, Math.ceil((v.resetAt - Date.now()) / 1000));
    const policy = `"delivery-rows";q=${this.opts.perMinute};w=${RATE_WINDOW_MS / 1000}`;
    const state = `"delivery-rows";r=${v.remaining};t=${t}`;
    // The draft headers name the budget that refused; X-RateLimit-* stay the key's.
    addHeader(ctx, "RateLimit-Policy", policy);
    addHeader(ctx, "RateLimit", state);
    throw new DeliveryRateLimitedError(this.opts.perMinute, t, { "RateLimit-Policy": policy, RateLimit: state });
  }
}
