import type { PrismaClient } from "../../generated/prisma/client";
import { queryRows, sql } from "../sql";

/**
 * The body hash and received_at of the event a tenant stored under an idempotency key, if any
 * (idempotency_keys: a key is held while its event's partition lives).
 */
export async function findStoredKey(prisma: PrismaClient, tenantId: string, key: string): Promise<{ body_hash: string; received_at: string } | null> {
  const row = await prisma.idempotencyKey.findUnique({
    where: { tenantId_idempotencyKey: { tenantId, idempotencyKey: key } },
    select: { bodyHash: true, receivedAt: true },
  });
  return row ? { body_hash: row.bodyHash, received_at: row.receivedAt.toISOString() } : null;
}

/** A (tenant, idempotency key) pair and the body hash stored under it. */
export interface StoredKey {
  readonly tenant_id: string;
  readonly idempotency_key: string;
  readonly body_hash: string;
}

/** The body hashes stored under these (tenant, idempotency key) pairs (absent pairs are left out). One query on idempotency_keys' primary key. */
export async function storedBodyHashes(prisma: PrismaClient, keys: ReadonlyArray<{ readonly tenantId: string; readonly key: string }>): Promise<StoredKey[]> {
  if (keys.length === 0) return [];
  return queryRows(
    prisma,
    "storedBodyHashes",
    sql`SELECT e.tenant_id, e.idempotency_key, e.body_hash
          FROM idempotency_keys e JOIN unnest(${keys.map((k) => k.tenantId)}::text[], ${keys.map((k) => k.key)}::text[]) AS k(tenant_id, idempotency_key)
            ON e.tenant_id = k.tenant_id AND e.idempotency_key = k.idempotency_key`,
    { tenant_id: "string", idempotency_key: "string", body_hash: "string" },
  );
}
