import type { PrismaClient } from "../generated/prisma/client";
import { execute, fragment, queryRows, sql, type RowOf } from "./sql";

/** 1–64 characters of [a-z0-9][a-z0-9._-]*. */
export const SUBSCRIPTION_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const DEFAULT_SUBSCRIPTION = "default";

/** What a subscription receives. An absent field matches every event. */
export interface SubscriptionFilter {
  /** The event's type must be one of these. */
  readonly types?: readonly string[] | undefined;
  /** The event's source must be one of these. */
  readonly sources?: readonly string[] | undefined;
  /** The event must carry every one of these tags. */
  readonly tags?: readonly string[] | undefined;
}

/** A subscription's columns as the store returns them. */
const SUBSCRIPTION_ROW = {
  id: "int",
  name: "string",
  filter_types: "strings?",
  filter_sources: "strings?",
  filter_tags: "strings?",
  created_at: "date",
  updated_at: "date",
} as const;

/** A subscription as the store returns it. */
export type SubscriptionRow = RowOf<typeof SUBSCRIPTION_ROW>;

const COLUMNS = fragment("id, name, filter_types, filter_sources, filter_tags, created_at, updated_at");

/** Tenants whose default subscription this client has already ensured (per client: a test's fresh database is a fresh client). */
const ensured = new WeakMap<PrismaClient, Set<string>>();

/**
 * Makes sure each tenant has its `default` subscription. Idempotent; the answer is remembered per
 * client (the default subscription cannot be deleted), so the ingest path pays this once per tenant
 * and process.
 */
export async function ensureDefaultSubscriptions(prisma: PrismaClient, tenantIds: readonly string[]): Promise<void> {
  let known = ensured.get(prisma);
  if (!known) ensured.set(prisma, (known = new Set()));
  const missing = [...new Set(tenantIds)].filter((t) => !known.has(t));
  if (missing.length === 0) return;
  await execute(prisma, sql`INSERT INTO subscriptions (tenant_id, name) SELECT t, ${DEFAULT_SUBSCRIPTION}::text FROM unnest(${missing}::text[]) AS t ORDER BY t ON CONFLICT DO NOTHING`);
  if (known.size > 100_000) known.clear();
  for (const t of missing) known.add(t);
}

/**
 * The internal id of a tenant's subscription by name, or null when it has none of that name. `default` always
 * exists (it is created on first use), and its id is remembered, so the original endpoints pay no
 * extra round trip.
 */
export async function resolveSubscription(prisma: PrismaClient, tenantId: string, name: string): Promise<number | null> {
  const isDefault = name === DEFAULT_SUBSCRIPTION;
  let defaults = defaultIds.get(prisma);
  if (isDefault) {
    const known = defaults?.get(tenantId);
    if (known !== undefined) return known;
    await ensureDefaultSubscriptions(prisma, [tenantId]);
  }
  const rows = await queryRows(prisma, "resolveSubscription", sql`SELECT id FROM subscriptions WHERE tenant_id = ${tenantId} AND name = ${name} AND deleted_at IS NULL`, { id: "int" });
  const row = rows[0];
  if (!row) return null;
  if (isDefault) {
    if (!defaults) defaultIds.set(prisma, (defaults = new Map()));
    if (defaults.size > 100_000) defaults.clear();
    defaults.set(tenantId, row.id);
  }
  return row.id;
}

/**
 * The id of each tenant's default subscription, per client. Safe to keep: `default` can be neither
 * deleted nor recreated, so its id never changes. Named subscriptions are looked up every time (a
 * deleted and recreated one has a new id).
 */
const defaultIds = new WeakMap<PrismaClient, Map<string, number>>();

const arr = (v: readonly string[] | undefined) => (v === undefined ? null : [...new Set(v)]);

/** What createSubscription did: the new row, or why there is none. */
export type CreateSubscriptionResult = { readonly created: SubscriptionRow } | { readonly refused: "exists" | "quota" };

/**
 * Creates a named subscription unless the tenant has one of that name already or has `max`
 * subscriptions (`default` and every live one counted). A per-tenant advisory lock serialises
 * concurrent creates, so the count and the insert see the same set and no race gets past `max`.
 */
export async function createSubscription(prisma: PrismaClient, tenantId: string, name: string, filter: SubscriptionFilter, max: number): Promise<CreateSubscriptionResult> {
  await ensureDefaultSubscriptions(prisma, [tenantId]);
  return prisma.$transaction(async (tx) => {
    await tx.$executeRaw(sql`SELECT 1 FROM pg_advisory_xact_lock(hashtextextended('subscriptions:' || ${tenantId}, 0))`);
    const [have] = await queryRows(
      tx,
      "countSubscriptions",
      sql`SELECT count(*)::int AS n, coalesce(bool_or(name = ${name}), false) AS taken FROM subscriptions WHERE tenant_id = ${tenantId} AND deleted_at IS NULL`,
      { n: "int", taken: "boolean" },
    );
    if (have?.taken) return { refused: "exists" } as const;
    if ((have?.n ?? 0) >= max) return { refused: "quota" } as const;
    const rows = await queryRows(
      tx,
      "createSubscription",
      sql`INSERT INTO subscriptions (tenant_id, name, filter_types, filter_sources, filter_tags)
          VALUES (${tenantId}, ${name}, ${arr(filter.types)}::text[], ${arr(filter.sources)}::text[], ${arr(filter.tags)}::text[])
          RETURNING ${COLUMNS}`,
      SUBSCRIPTION_ROW,
    );
    return { created: rows[0]! };
  }, CREATE_TRANSACTION);
}

/**
 * Deadlines of a create's transaction: waiting for a pooled connection, and the whole transaction
 * (the lock wait behind the tenant's other creates included). Longer than Prisma's defaults (2 s,
 * 5 s), so a burst of one tenant's creates on a busy machine is answered, not refused with 503.
 */
const CREATE_TRANSACTION = { maxWait: 10_000, timeout: 10_000 } as const;

/** A tenant's subscriptions by name (`default` included). */
export async function listSubscriptions(prisma: PrismaClient, tenantId: string): Promise<SubscriptionRow[]> {
  await ensureDefaultSubscriptions(prisma, [tenantId]);
  return queryRows(prisma, "listSubscriptions", sql`SELECT ${COLUMNS} FROM subscriptions WHERE tenant_id = ${tenantId} AND deleted_at IS NULL ORDER BY name`, SUBSCRIPTION_ROW);
}

/** One of a tenant's subscriptions by name; null when it has none of that name. */
export async function getSubscription(prisma: PrismaClient, tenantId: string, name: string): Promise<SubscriptionRow | null> {
  if (name === DEFAULT_SUBSCRIPTION) await ensureDefaultSubscriptions(prisma, [tenantId]);
  const rows = await queryRows(prisma, "getSubscription", sql`SELECT ${COLUMNS} FROM subscriptions WHERE tenant_id = ${tenantId} AND name = ${name} AND deleted_at IS NULL`, SUBSCRIPTION_ROW);
  return rows[0] ?? null;
}

/** The `default` subscription receives every event: its filter cannot change and it cannot be deleted. */
export class DefaultSubscriptionFixedError extends Error {
  constructor() {
    super("the default subscription receives every event and cannot be changed or deleted");
  }
}

/**
 * Replaces a subscription's filter; it applies to events stored from now on. Null when the tenant
 * has no subscription of that name; `default` throws DefaultSubscriptionFixedError.
 */
export async function updateSubscription(prisma: PrismaClient, tenantId: string, name: string, filter: SubscriptionFilter): Promise<SubscriptionRow | null> {
  if (name === DEFAULT_SUBSCRIPTION) throw new DefaultSubscriptionFixedError();
  const rows = await queryRows(
    prisma,
    "updateSubscription",
    sql`UPDATE subscriptions SET filter_types = ${arr(filter.types)}::text[], filter_sources = ${arr(filter.sources)}::text[], filter_tags = ${arr(filter.tags)}::text[], updated_at = now()
        WHERE tenant_id = ${tenantId} AND name = ${name} AND deleted_at IS NULL
        RETURNING ${COLUMNS}`,
    SUBSCRIPTION_ROW,
  );
  return rows[0] ?? null;
}

/**
 * Deletes a subscription: marks it, so at once it leaves the API, receives no fan-out and gives no
 * leases, and its name is free. Its deliveries are removed afterwards in bounded batches
 * (purgeDeletedSubscriptionBatch), so this is one single-row update however many it has. False when
 * the tenant has no subscription of that name; `default` throws DefaultSubscriptionFixedError.
 */
export async function deleteSubscription(prisma: PrismaClient, tenantId: string, name: string): Promise<boolean> {
  if (name === DEFAULT_SUBSCRIPTION) throw new DefaultSubscriptionFixedError();
  const n = await execute(prisma, sql`UPDATE subscriptions SET deleted_at = now() WHERE tenant_id = ${tenantId} AND name = ${name} AND deleted_at IS NULL`);
  return n > 0;
}

/** What one purge step removed. */
export interface PurgeStep {
  /** Deliveries deleted (of the oldest deleted subscription). */
  readonly deliveries: number;
  /** 1 when the subscription's row went too (it had no deliveries left), else 0. */
  readonly subscriptions: number;
  /** False when no deleted subscription was left to purge. */
  readonly found: boolean;
}

/**
 * One bounded step of removing deleted subscriptions: up to `batchSize` deliveries of the oldest
 * deleted one, and the events whose last delivery they were; once it has none left, its row. Safe
 * to run from several processes at once (a row another one deletes is simply skipped).
 */
export async function purgeDeletedSubscriptionBatch(prisma: PrismaClient, batchSize: number): Promise<PurgeStep> {
  const [target] = await queryRows(prisma, "oldestDeletedSubscription", sql`SELECT id, tenant_id FROM subscriptions WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id LIMIT 1`, { id: "int", tenant_id: "string" });
  if (!target) return { deliveries: 0, subscriptions: 0, found: false };
  const [step] = await queryRows(
    prisma,
    "purgeSubscriptionDeliveries",
    sql`WITH gone AS (
       DELETE FROM deliveries WHERE (event_id, subscription_id) IN (
         SELECT event_id, subscription_id FROM deliveries WHERE tenant_id = ${target.tenant_id} AND subscription_id = ${target.id}::int LIMIT ${batchSize}::int)
       RETURNING event_id
     ),
     orphans AS (
       DELETE FROM events e USING gone g
       WHERE e.id = g.event_id AND e.tenant_id = ${target.tenant_id}
         AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.event_id = g.event_id AND o.subscription_id <> ${target.id}::int)
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM gone)::int AS deliveries, (SELECT count(*) FROM orphans)::int AS events`,
    { deliveries: "int", events: "int" },
  );
  const deliveries = step?.deliveries ?? 0;
  if (deliveries >= batchSize) return { deliveries, subscriptions: 0, found: true };
  // A store that read the subscription before it was marked may still add a delivery: the row goes
  // only when none is left (the next step takes any straggler).
  const removed = await execute(
    prisma,
    sql`DELETE FROM subscriptions s WHERE s.id = ${target.id}::int AND s.deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.tenant_id = s.tenant_id AND d.subscription_id = s.id)`,
  );
  return { deliveries, subscriptions: removed, found: true };
}

/**
 * Every tenant's live subscription filters, for weighing a group commit by the deliveries it will
 * write (an empty filter matches every event).
 */
export async function loadSubscriptionFilters(prisma: PrismaClient, tenantIds: readonly string[]): Promise<Map<string, SubscriptionFilter[]>> {
  const rows = await queryRows(
    prisma,
    "loadSubscriptionFilters",
    sql`SELECT tenant_id, filter_types, filter_sources, filter_tags FROM subscriptions WHERE tenant_id = ANY (${[...tenantIds]}::text[]) AND deleted_at IS NULL`,
    { tenant_id: "string", filter_types: "strings?", filter_sources: "strings?", filter_tags: "strings?" },
  );
  const out = new Map<string, SubscriptionFilter[]>(tenantIds.map((t) => [t, []]));
  for (const r of rows) {
    out.get(r.tenant_id)?.push({ types: r.filter_types ?? undefined, sources: r.filter_sources ?? undefined, tags: r.filter_tags ?? undefined });
  }
  return out;
}

/** Whether a filter matches an event: the same rule as the fan-out join of insert-events.ts. */
export function filterMatches(f: SubscriptionFilter, e: { type: string; source: string | null; tags: readonly string[] }): boolean {
  if (f.types && !f.types.includes(e.type)) return false;
  if (f.sources && (e.source === null || !f.sources.includes(e.source))) return false;
  if (f.tags && !f.tags.every((t) => e.tags.includes(t))) return false;
  return true;
}
