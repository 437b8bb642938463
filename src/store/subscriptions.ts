import type { PrismaClient } from "../generated/prisma/client";

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

/** A subscription as the store returns it. */
export interface SubscriptionRow {
  id: number;
  name: string;
  filter_types: string[] | null;
  filter_sources: string[] | null;
  filter_tags: string[] | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = "id, name, filter_types, filter_sources, filter_tags, created_at, updated_at";

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
  await prisma.$executeRawUnsafe(
    `INSERT INTO subscriptions (tenant_id, name) SELECT t, '${DEFAULT_SUBSCRIPTION}' FROM unnest($1::text[]) AS t ORDER BY t ON CONFLICT DO NOTHING`,
    missing,
  );
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
  const rows = await prisma.$queryRawUnsafe<Array<{ id: number }>>("SELECT id FROM subscriptions WHERE tenant_id = $1 AND name = $2", tenantId, name);
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

/** Creates a named subscription; null when the tenant has one of that name already. */
export async function createSubscription(prisma: PrismaClient, tenantId: string, name: string, filter: SubscriptionFilter): Promise<SubscriptionRow | null> {
  await ensureDefaultSubscriptions(prisma, [tenantId]);
  const rows = await prisma.$queryRawUnsafe<SubscriptionRow[]>(
    `INSERT INTO subscriptions (tenant_id, name, filter_types, filter_sources, filter_tags)
     VALUES ($1, $2, $3::text[], $4::text[], $5::text[])
     ON CONFLICT (tenant_id, name) DO NOTHING
     RETURNING ${COLUMNS}`,
    tenantId,
    name,
    arr(filter.types),
    arr(filter.sources),
    arr(filter.tags),
  );
  return rows[0] ?? null;
}

/** A tenant's subscriptions by name (`default` included). */
export async function listSubscriptions(prisma: PrismaClient, tenantId: string): Promise<SubscriptionRow[]> {
  await ensureDefaultSubscriptions(prisma, [tenantId]);
  const rows = await prisma.$queryRawUnsafe<SubscriptionRow[]>(`SELECT ${COLUMNS} FROM subscriptions WHERE tenant_id = $1 ORDER BY name`, tenantId);
  return rows;
}

/** One of a tenant's subscriptions by name; null when it has none of that name. */
export async function getSubscription(prisma: PrismaClient, tenantId: string, name: string): Promise<SubscriptionRow | null> {
  if (name === DEFAULT_SUBSCRIPTION) await ensureDefaultSubscriptions(prisma, [tenantId]);
  const rows = await prisma.$queryRawUnsafe<SubscriptionRow[]>(`SELECT ${COLUMNS} FROM subscriptions WHERE tenant_id = $1 AND name = $2`, tenantId, name);
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
  const rows = await prisma.$queryRawUnsafe<SubscriptionRow[]>(
    `UPDATE subscriptions SET filter_types = $3::text[], filter_sources = $4::text[], filter_tags = $5::text[], updated_at = now()
     WHERE tenant_id = $1 AND name = $2
     RETURNING ${COLUMNS}`,
    tenantId,
    name,
    arr(filter.types),
    arr(filter.sources),
    arr(filter.tags),
  );
  return rows[0] ?? null;
}

/**
 * Deletes a subscription and (by the foreign key's cascade) its deliveries. False when the tenant
 * has no subscription of that name; `default` throws DefaultSubscriptionFixedError.
 */
export async function deleteSubscription(prisma: PrismaClient, tenantId: string, name: string): Promise<boolean> {
  if (name === DEFAULT_SUBSCRIPTION) throw new DefaultSubscriptionFixedError();
  const n = await prisma.$executeRawUnsafe("DELETE FROM subscriptions WHERE tenant_id = $1 AND name = $2", tenantId, name);
  return n > 0;
}
