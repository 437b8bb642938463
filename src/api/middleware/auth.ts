import type { Context, Next } from "koa";
import type { PrismaClient } from "../../generated/prisma/client";
import { hashApiKey } from "../../domain/ids";
import { LRUCache } from "lru-cache";
import { AppError, ForbiddenError, UnauthorizedError, UnavailableError } from "../../errors";
import { findActiveKey, type Principal, type Scope } from "../../store/api-keys";

/** `Bearer <key>`; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9_\-]{8,128})$/i;

export interface KeyCacheOptions {
  /** Keys that resolved to a principal, kept (even past their TTL) so tenants keep working while Postgres is down. */
  readonly maxEntries?: number;
  /** Unknown or revoked keys remembered; a separate LRU, so a flood of bad keys never evicts a good one. */
  readonly maxNegativeEntries?: number;
}

interface Entry<T> {
  readonly value: T;
  readonly expires: number;
}

/**
 * Resolves API keys to principals with a short cache, so the ingest path needs no database
 * round trip per request. A revoked key stops working within `ttlMs` (at most 5 s by config).
 * Two bounded LRUs (lru-cache): one for keys that resolved to a principal and one for unknown
 * keys, so a flood of bad keys evicts only other bad keys. While Postgres is unreachable (or a
 * lookup passes its deadline), a key that was valid at its last successful check keeps working
 * (ingest needs no database otherwise); revocations take effect once Postgres answers again.
 */
export class KeyCache {
  private positive: LRUCache<string, Entry<Principal>>;
  private readonly negative: LRUCache<string, Entry<null>>;
  /** Lookups in flight, so a burst on an expired entry costs one query, not one per request. */
  private readonly inFlight = new Map<string, Promise<Principal | null>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly ttlMs: number,
    opts: KeyCacheOptions = {},
  ) {
    this.positive = new LRUCache({ max: opts.maxEntries ?? 10_000 });
    this.negative = new LRUCache({ max: opts.maxNegativeEntries ?? 10_000 });
  }

  /** True when `secret` resolved to a principal before (fresh or stale): such keys skip the failed-auth throttle. */
  knows(secret: string): boolean {
    return this.positive.has(hashApiKey(secret));
  }

  /** The fresh cached answer for `secret` (a principal, or null for a known-bad key), or undefined when only `resolve` can tell. */
  cached(secret: string): Principal | null | undefined {
    return this.fresh(hashApiKey(secret));
  }

  async resolve(secret: string): Promise<Principal | null> {
    const slot = hashApiKey(secret); // never keep the secret itself in memory longer than needed
    const hit = this.fresh(slot);
    if (hit !== undefined) return hit;
    let pending = this.inFlight.get(slot);
    if (!pending) {
      pending = this.lookup(slot, secret).finally(() => this.inFlight.delete(slot));
      this.inFlight.set(slot, pending);
    }
    return pending;
  }

  /** The unexpired cached answer for a key hash, or undefined. */
  private fresh(slot: string): Principal | null | undefined {
    const hit = this.positive.get(slot) ?? this.negative.get(slot);
    return hit && hit.expires > Date.now() ? hit.value : undefined;
  }

  private async lookup(slot: string, secret: string): Promise<Principal | null> {
    let principal: Principal | null;
    try {
      principal = await findActiveKey(this.prisma, secret);
    } catch {
      const stale = this.positive.get(slot);
      if (stale) {
        // Trusted for another TTL, so requests with this key do not each wait for a lookup
        // deadline while Postgres is down; the next lookup retries.
        this.positive.set(slot, { value: stale.value, expires: Date.now() + this.ttlMs });
        return stale.value;
      }
      throw new UnavailableError("postgres", 2, "API keys cannot be checked right now");
    }
    const expires = Date.now() + this.ttlMs;
    if (principal) {
      this.negative.delete(slot);
      this.positive.set(slot, { value: principal, expires });
    } else {
      this.positive.delete(slot);
      this.negative.set(slot, { value: null, expires });
    }
    return principal;
  }
}

/**
 * Counts failed authentications per client address in a fixed one-minute window (a bounded LRU
 * of counters). Past `perMinute`, keys this process has not seen valid are refused with 429
 * before any lookup, so a bad-key flood from one address costs no Postgres query.
 */
export class AuthFailureThrottle {
  private readonly counters: LRUCache<string, { count: number; windowEnds: number }>;

  constructor(
    readonly perMinute: number,
    maxAddresses = 50_000,
  ) {
    this.counters = new LRUCache({ max: maxAddresses });
  }

  /** Seconds until `address` may try unknown keys again, or 0 when it may now. */
  blockedFor(address: string): number {
    if (this.counters.size === 0) return 0;
    const c = this.counters.get(address);
    if (!c) return 0;
    const now = Date.now();
    if (c.windowEnds <= now) return 0;
    return c.count >= this.perMinute ? Math.ceil((c.windowEnds - now) / 1000) : 0;
  }

  fail(address: string): void {
    const now = Date.now();
    const c = this.counters.get(address);
    if (!c || c.windowEnds <= now) this.counters.set(address, { count: 1, windowEnds: now + 60_000 });
    else c.count++;
  }
}

/** Authenticates the Bearer key and stores the principal in ctx.state.principal. */
export function authenticate(keys: KeyCache, throttle?: AuthFailureThrottle) {
  const admit = (ctx: Context, next: Next, principal: Principal | null): Promise<void> => {
    if (!principal) {
      throttle?.fail(ctx.ip);
      throw new UnauthorizedError("invalid or revoked API key");
    }
    ctx.state.principal = principal;
    return next();
  };
  // Not async: a key the cache answers for goes on without a promise or a microtask of its own.
  return function auth(ctx: Context, next: Next): Promise<void> {
    const header = ctx.req.headers.authorization ?? "";
    const match = BEARER.exec(header);
    if (!match) {
      if (header !== "") throttle?.fail(ctx.ip);
      throw new UnauthorizedError(header === "" ? "missing API key (Authorization: Bearer <key>)" : "malformed Authorization header");
    }
    const secret = match[1]!;
    if (throttle) {
      const wait = throttle.blockedFor(ctx.ip);
      if (wait > 0 && !keys.knows(secret)) throw new TooManyFailuresError(wait);
    }
    const cached = keys.cached(secret);
    if (cached !== undefined) return admit(ctx, next, cached);
    return keys.resolve(secret).then((principal) => admit(ctx, next, principal));
  };
}

class TooManyFailuresError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(429, "too_many_failed_authentications", `too many failed authentications from this address; retry in ${retryAfterSeconds} s`, [], {
      "Retry-After": String(retryAfterSeconds),
    });
  }
}

/** Requires a scope of the authenticated principal (403 otherwise). */
export function requireScope(scope: Scope) {
  return function scoped(ctx: Context, next: Next): Promise<void> {
    const principal = ctx.state.principal as Principal | undefined;
    if (!principal) throw new UnauthorizedError();
    if (!principal.scopes.has(scope) && !principal.scopes.has("admin")) throw new ForbiddenError(scope);
    return next();
  };
}

/** The authenticated principal of a request that passed `authenticate`. */
export function principalOf(ctx: Context): Principal {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw new UnauthorizedError();
  return principal;
}
