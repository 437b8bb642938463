import { timingSafeEqual } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client";
import { queryRows, sql } from "./sql";
import { hashApiKey, newApiKeyId, newApiKeySecret } from "../domain/ids";

/** `admin` implies every other scope (see requireScope). */
export const SCOPES = ["events:write", "inbox:read", "events:ack", "subscriptions:manage", "schemas:manage", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** An authenticated caller: never carries the secret. */
export interface Principal {
  readonly keyId: string;
  readonly tenantId: string;
  readonly scopes: ReadonlySet<string>;
  readonly rateLimit: number | null;
  /** The tenant's live subscriptions (`default` included once it exists) when the key was read. */
  readonly liveSubscriptions: number;
}

/** Creates a key; the secret is returned once and only its hash is stored. */
export async function createApiKey(
  prisma: PrismaClient,
  input: { tenantId: string; name: string; scopes: readonly Scope[]; rateLimit?: number | null },
): Promise<{ id: string; secret: string; tenantId: string; scopes: Scope[]; name: string }> {
  const secret = newApiKeySecret();
  const id = newApiKeyId();
  await prisma.apiKey.create({
    data: {
      id,
      tenantId: input.tenantId,
      name: input.name,
      prefix: secret.slice(0, 8),
      keyHash: hashApiKey(secret),
      scopes: [...input.scopes],
      rateLimit: input.rateLimit ?? null,
    },
  });
  return { id, secret, tenantId: input.tenantId, scopes: [...input.scopes], name: input.name };
}

/** Lists a tenant's keys (or all), without secrets or hashes. */
export async function listApiKeys(prisma: PrismaClient, tenantId?: string) {
  return prisma.apiKey.findMany({
    where: tenantId ? { tenantId } : {},
    select: { id: true, tenantId: true, name: true, prefix: true, scopes: true, rateLimit: true, createdAt: true, revokedAt: true },
    orderBy: { createdAt: "asc" },
  });
}

/** Revokes a key; returns false when there is no such key. */
export async function revokeApiKey(prisma: PrismaClient, keyId: string): Promise<boolean> {
  const res = await prisma.apiKey.updateMany({ where: { id: keyId, revokedAt: null }, data: { revokedAt: new Date() } });
  if (res.count > 0) return true;
  return (await prisma.apiKey.count({ where: { id: keyId } })) > 0;
}

/**
 * Finds the active key whose hash matches `secret`, with its tenant's live subscription count (what
 * the delivery-rows budget charges per event); null for unknown or revoked keys.
 */
export async function findActiveKey(prisma: PrismaClient, secret: string): Promise<Principal | null> {
  const hash = hashApiKey(secret);
  const row = await prisma.apiKey.findUnique({ where: { keyHash: hash } });
  if (!row || row.revokedAt !== null) return null;
  // The index lookup already matched; compare again in constant time so no code path branches on a partial match.
  if (!timingSafeEqual(Buffer.from(row.keyHash, "hex"), Buffer.from(hash, "hex"))) return null;
  const [subs] = await queryRows(prisma, "countLiveSubscriptions", sql`SELECT count(*)::int AS n FROM subscriptions WHERE tenant_id = ${row.tenantId} AND deleted_at IS NULL`, { n: "int" });
  return { keyId: row.id, tenantId: row.tenantId, scopes: new Set(row.scopes), rateLimit: row.rateLimit, liveSubscriptions: subs?.n ?? 0 };
}
