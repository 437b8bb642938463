import type { PrismaClient } from "../generated/prisma/client";
import { fragment, queryRows, sql } from "./sql";

/**
 * The LISTEN/NOTIFY channel of the current schema, so that processes on other schemas of one
 * database never hear each other: a plain identifier shorter than Postgres's 63 bytes.
 */
const CHANNEL = fragment("'triggers_' || left(md5(current_schema()), 16)");

/** The channel's name in this schema (what LISTEN takes). */
export async function notificationChannel(prisma: PrismaClient): Promise<string> {
  const rows = await queryRows(prisma, "notificationChannel", sql`SELECT ${CHANNEL} AS ch`, { ch: "string" });
  return rows[0]!.ch;
}

/** Raises a notification with `payload` (under 8000 bytes) on this schema's channel; delivered when it commits (at once outside a transaction). */
export async function notify(prisma: PrismaClient, payload: string): Promise<void> {
  await prisma.$executeRaw(sql`SELECT pg_notify(${CHANNEL}, ${payload})`);
}
