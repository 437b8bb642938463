import type { Redis } from "ioredis";
import type { ValidateFunction } from "ajv/dist/2020";
import type { PrismaClient } from "../generated/prisma/client";
import type { Logger } from "../observability/logger";
import { latestSchemas, type SchemaRow } from "../store/schemas";
import type { SchemaBounds } from "./bounds";
import { compileSchema } from "./compile";

/** The latest version of a type's schema, compiled. */
export interface CompiledSchema {
  readonly version: number;
  readonly validate: ValidateFunction;
}

/** One tenant's types with a schema, as this process last read them. */
interface TenantEntry {
  readonly loadedAt: number;
  readonly types: ReadonlyMap<string, CompiledSchema>;
}

export interface SchemaRegistryOptions {
  readonly prisma: PrismaClient;
  readonly bounds: SchemaBounds;
  /** Longest a tenant's entry is used before it is read again from the database, ms. */
  readonly ttlMs: number;
  /** Tenants kept (least recently used dropped first). */
  readonly maxTenants: number;
  /** Where registrations are announced to the other API processes; without it, the TTL alone bounds staleness. */
  readonly redis?: Redis | undefined;
  readonly prefix: string;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * The per-process cache of every tenant's latest schemas, compiled, in front of the registry's
 * durable record (Postgres, src/store/schemas.ts), which always wins:
 * - a tenant's entry is read (one query for all its types) on first use, and read again in the
 *   background once it is older than the TTL (SCHEMA_CACHE_TTL_MS; the entry still answers
 *   meanwhile), so a change reaches every process within about the TTL whatever happens to Redis;
 *   while the database is down, the entry is kept (and read again a TTL later): ingest of a known
 *   tenant never waits on the database;
 * - a registration or deletion drops the tenant's entry in this process at once and publishes the
 *   tenant on the Redis channel `<prefix>:schemas`; every process subscribed drops it too, so in
 *   the common case the next event of that tenant anywhere is checked against the new version;
 * - when the subscription (re)connects, every entry is dropped, since announcements made while
 *   it was down were missed; while Redis is down, publishing fails quietly and the TTL applies;
 * - a version already compiled is reused across reloads (keyed by tenant, type and version), so a
 *   reload that finds nothing new compiles nothing;
 * - at most maxTenants tenants are kept, least recently used dropped first.
 * An event is validated against the latest version the process knows: within the TTL of a
 * registration (or at once, with Redis), the latest one stored.
 */
export class SchemaRegistry {
  private readonly entries = new Map<string, TenantEntry>();
  private readonly loading = new Map<string, Promise<TenantEntry>>();
  private readonly channel: string;
  private subscriber: Redis | undefined;
  private readonly now: () => number;
  /** Bumped by every invalidation of a tenant, so a load that started before it is not cached. */
  private readonly generations = new Map<string, number>();
  private generation = 0;

  constructor(private readonly opts: SchemaRegistryOptions) {
    this.channel = `${opts.prefix}:schemas`;
    this.now = opts.now ?? Date.now;
  }

  /** Subscribes to other processes' announcements (when there is Redis). */
  start(): void {
    const redis = this.opts.redis;
    if (!redis || this.subscriber) return;
    const sub = redis.duplicate({ lazyConnect: false, enableOfflineQueue: true });
    this.subscriber = sub;
    sub.on("error", () => undefined);
    sub.on("ready", () => {
      // Announcements made while unsubscribed were missed: start again from the durable record.
      this.clear();
      sub.subscribe(this.channel).catch((err: unknown) => this.opts.logger.warn({ err: String(err) }, "schema cache: cannot subscribe; relying on its TTL"));
    });
    sub.on("message", (channel: string, tenantId: string) => {
      if (channel === this.channel) this.drop(tenantId);
    });
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }

  /**
   * A tenant's types with a schema: synchronously when the process has an entry for it (the
   * common case on the ingest path), else once it has been read and compiled. An entry older than
   * the TTL is still answered while a read in the background replaces it (stale while
   * revalidating), so the ingest path never waits on the database for a tenant it knows, and keeps
   * answering while the database is down (the entry is kept and read again a TTL later).
   */
  typesOf(tenantId: string): ReadonlyMap<string, CompiledSchema> | Promise<ReadonlyMap<string, CompiledSchema>> {
    const entry = this.entries.get(tenantId);
    if (entry) {
      if (this.now() - entry.loadedAt >= this.opts.ttlMs && !this.loading.has(tenantId)) {
        this.load(tenantId, entry).catch(() => undefined);
      }
      // Most recently used last.
      this.entries.delete(tenantId);
      this.entries.set(tenantId, entry);
      return entry.types;
    }
    return this.load(tenantId, undefined).then((e) => e.types);
  }

  /** Drops a tenant's entry here and announces the change to every other process (best effort). */
  async invalidate(tenantId: string): Promise<void> {
    this.drop(tenantId);
    const redis = this.opts.redis;
    if (!redis || redis.status !== "ready") return;
    await redis.publish(this.channel, tenantId).catch((err: unknown) => this.opts.logger.warn({ err: String(err) }, "schema cache: cannot announce a change; other processes see it within SCHEMA_CACHE_TTL_MS"));
  }

  /** Drops a tenant's entry in this process. */
  drop(tenantId: string): void {
    const loading = this.loading.delete(tenantId);
    if (this.entries.delete(tenantId) || loading) this.generations.set(tenantId, ++this.generation);
  }

  private clear(): void {
    for (const t of [...this.entries.keys(), ...this.loading.keys()]) this.drop(t);
  }

  private load(tenantId: string, previous: TenantEntry | undefined): Promise<TenantEntry> {
    const inFlight = this.loading.get(tenantId);
    if (inFlight) return inFlight;
    const generation = this.generations.get(tenantId);
    const keep = (entry: TenantEntry): void => {
      if (this.generations.get(tenantId) !== generation) return;
      this.entries.delete(tenantId);
      this.entries.set(tenantId, entry);
      while (this.entries.size > this.opts.maxTenants) this.entries.delete(this.entries.keys().next().value!);
    };
    const p = latestSchemas(this.opts.prisma, tenantId)
      .then(
        (rows) => {
          const entry: TenantEntry = { loadedAt: this.now(), types: this.compileAll(rows, previous) };
          keep(entry);
          return entry;
        },
        (err: unknown) => {
          if (!previous) throw err;
          // The database is unreachable: keep what the process knows, and try again a TTL later.
          this.opts.logger.warn({ err: err instanceof Error ? err.message : String(err), tenant: tenantId }, "schema cache: cannot re-read a tenant's schemas; using the ones known");
          const entry: TenantEntry = { loadedAt: this.now(), types: previous.types };
          keep(entry);
          return entry;
        },
      )
      .finally(() => {
        if (this.loading.get(tenantId) !== p) return;
        this.loading.delete(tenantId);
        this.generations.delete(tenantId);
      });
    this.loading.set(tenantId, p);
    return p;
  }

  private compileAll(rows: readonly SchemaRow[], previous: TenantEntry | undefined): Map<string, CompiledSchema> {
    const types = new Map<string, CompiledSchema>();
    for (const row of rows) {
      const known = previous?.types.get(row.type);
      if (known && known.version === row.version) {
        types.set(row.type, known);
        continue;
      }
      // Stored schemas passed these bounds when registered; a generous multiple of the compile
      // limit keeps a loaded machine from refusing a schema it accepted before.
      try {
        const validate = compileSchema(row.schema, { ...this.opts.bounds, maxCompileMs: this.opts.bounds.maxCompileMs * 20 });
        types.set(row.type, { version: row.version, validate });
      } catch (err) {
        // Not expected (it compiled when registered): the version known before, if any, stays in use.
        this.opts.logger.error({ err: err instanceof Error ? err.message : String(err), type: row.type, version: row.version }, "schema cache: a stored schema does not compile");
        if (known) types.set(row.type, known);
      }
    }
    return types;
  }
}
