import type { PrismaClient } from "../../generated/prisma/client";
import { EVENT_COLUMNS, type EventRow } from "./event-row";

/** One event of one tenant, or null (also for another tenant's event). */
export async function getEvent(prisma: PrismaClient, tenantId: string, eventId: string): Promise<EventRow | null> {
  const rows = await prisma.$queryRawUnsafe<EventRow[]>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE id = $1 AND tenant_id = $2`,
    eventId,
    tenantId,
  );
  return rows[0] ?? null;
}

/** The body hash of the event a tenant stored under an idempotency key, if any. */
export async function findByIdempotencyKey(
  prisma: PrismaClient,
  tenantId: string,
  key: string,
): Promise<{ id: string; body_hash: string } | null> {
  const row = await prisma.event.findUnique({
    where: { tenantId_idempotencyKey: { tenantId, idempotencyKey: key } },
    select: { id: true, bodyHash: true },
  });
  return row ? { id: row.id, body_hash: row.bodyHash } : null;
}
