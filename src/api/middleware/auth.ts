import type { Context, Next } from "koa";
import type { PrismaClient } from "../../generated/prisma/client";
import { hashApiKey } from "../../domain/ids";
import { ForbiddenError, UnauthorizedError, UnavailableError } from "../../errors";
import { findActiveKey, type Principal, type Scope } from "../../store/api-keys";

const BEARER = /^Bearer ([A-Za-z0-9_\-]{8,128})$/;

/**
 * Resolves API keys to principals with a short cache, so the ingest path needs no database
 * round trip per request. A revoked key stops working within `ttlMs` (at most 5 s by config).
 * Unknown keys are cached too, so a flood of bad keys cannot hammer Postgres. While Postgres is
 * unreachable, a key that was valid at its last successful check keeps working (ingest needs no
 * database otherwise); revocations take effect once Postgres answers again.
 */
export class KeyCache {
  private readonly entries = new Map<string, { principal: Principal | null; expires: number }>();
  /** Lookups in flight, so a burst on an expired entry costs one query, not one per request. */
  private readonly inFlight = new Map<string, Promise<Principal | null>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly ttlMs: number,
  ) {}

  async resolve(secret: string): Promise<Principal | null> {
    const slot = hashApiKey(secret); // never keep the secret itself in memory longer than needed
    const now = Date.now();
    const hit = this.entries.get(slot);
    if (hit && hit.expires > now) return hit.principal;
    let pending = this.inFlight.get(slot);
    if (!pending) {
      pending = this.lookup(slot, secret).finally(() => this.inFlight.delete(slot));
      this.inFlight.set(slot, pending);
    }
    return pending;
  }

  private async lookup(slot: string, secret: string): Promise<Principal | null> {
    let principal: Principal | null;
    try {
      principal = await findActiveKey(this.prisma, secret);
    } catch {
      const stale = this.entries.get(slot);
      if (stale?.principal) return stale.principal;
      throw new UnavailableError("postgres", 2, "API keys cannot be checked right now");
    }
    if (this.entries.size >= 50_000) this.entries.clear();
    this.entries.set(slot, { principal, expires: Date.now() + this.ttlMs });
    return principal;
  }
}

/** Authenticates the Bearer key and stores the principal in ctx.state.principal. */
export function authenticate(keys: KeyCache) {
  return async function auth(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get("Authorization");
    const match = BEARER.exec(header);
    if (!match) throw new UnauthorizedError(header === "" ? "missing API key (Authorization: Bearer <key>)" : "malformed Authorization header");
    const principal = await keys.resolve(match[1]!);
    if (!principal) throw new UnauthorizedError("invalid or revoked API key");
    ctx.state.principal = principal;
    await next();
  };
}

/** Requires a scope of the authenticated principal (403 otherwise). */
export function requireScope(scope: Scope) {
  return async function scoped(ctx: Context, next: Next): Promise<void> {
    const principal = ctx.state.principal as Principal | undefined;
    if (!principal) throw new UnauthorizedError();
    if (!principal.scopes.has(scope) && !principal.scopes.has("admin")) throw new ForbiddenError(scope);
    await next();
  };
}

/** The authenticated principal of a request that passed `authenticate`. */
export function principalOf(ctx: Context): Principal {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw new UnauthorizedError();
  return principal;
}
