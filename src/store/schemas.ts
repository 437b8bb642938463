import { isDeepStrictEqual } from "node:util";
import type { PrismaClient } from "../generated/prisma/client";

/*
 * The schema registry's rows (table event_schemas): per tenant and event type, numbered versions
 * of a JSON Schema. Every statement is scoped to one tenant. Returns rows and refusals, never HTTP
 * errors (src/schemas/registry.ts and the route decide what they mean).
 */

/** One stored version. */
export interface SchemaRow {
  type: string;
  version: number;
  schema: unknown;
  compatibility: "backward" | "none";
  created_at: Date;
}

/** A type's latest version and how many versions it has. */
export interface SchemaSummaryRow extends SchemaRow {
  versions: number;
}

/** The statements, by name. */
const SQL = {
  latestPerType: `SELECT DISTINCT ON (type) type, version, schema, compatibility, created_at FROM event_schemas WHERE tenant_id = $1 ORDER BY type, version DESC`,
  summaries: `SELECT DISTINCT ON (type) type, version, schema, compatibility, created_at, (count(*) OVER (PARTITION BY type))::int AS versions
              FROM event_schemas WHERE tenant_id = $1 ORDER BY type, version DESC`,
  versionsOfType: `SELECT type, version, schema, compatibility, created_at FROM event_schemas WHERE tenant_id = $1 AND type = $2 ORDER BY version`,
  oneVersion: `SELECT type, version, schema, compatibility, created_at FROM event_schemas WHERE tenant_id = $1 AND type = $2 AND version = $3`,
  lockTenant: `SELECT 1 FROM pg_advisory_xact_lock(hashtextextended('event_schemas:' || $1, 0))`,
  counts: `SELECT (SELECT count(DISTINCT type) FROM event_schemas WHERE tenant_id = $1)::int AS types,
                  (SELECT count(*) FROM event_schemas WHERE tenant_id = $1 AND type = $2)::int AS versions`,
  latestOfType: `SELECT type, version, schema, compatibility, created_at FROM event_schemas WHERE tenant_id = $1 AND type = $2 ORDER BY version DESC LIMIT 1`,
  insert: `INSERT INTO event_schemas (tenant_id, type, version, schema, compatibility) VALUES ($1, $2, $3, $4::jsonb, $5)
           RETURNING type, version, schema, compatibility, created_at`,
  deleteType: `DELETE FROM event_schemas WHERE tenant_id = $1 AND type = $2`,
} as const;

/** The latest version of each of a tenant's types (what ingest validates against). */
export async function latestSchemas(prisma: PrismaClient, tenantId: string): Promise<SchemaRow[]> {
  return prisma.$queryRawUnsafe<SchemaRow[]>(SQL.latestPerType, tenantId);
}

/** Every type of a tenant with its latest version and version count, by type. */
export async function listSchemas(prisma: PrismaClient, tenantId: string): Promise<SchemaSummaryRow[]> {
  return prisma.$queryRawUnsafe<SchemaSummaryRow[]>(SQL.summaries, tenantId);
}

/** Every version of one type, oldest first; empty when the type has no schema. */
export async function schemaVersions(prisma: PrismaClient, tenantId: string, type: string): Promise<SchemaRow[]> {
  return prisma.$queryRawUnsafe<SchemaRow[]>(SQL.versionsOfType, tenantId, type);
}

/** One version of a type, or null. */
export async function schemaVersion(prisma: PrismaClient, tenantId: string, type: string, version: number): Promise<SchemaRow | null> {
  return (await prisma.$queryRawUnsafe<SchemaRow[]>(SQL.oneVersion, tenantId, type, version))[0] ?? null;
}

/** What registerSchema did: the new version, or why there is none. */
export type RegisterResult =
  | { readonly created: SchemaRow }
  | { readonly unchanged: SchemaRow }
  | { readonly refused: "types_quota" | "versions_quota" }
  | { readonly refused: "incompatible"; readonly previous: SchemaRow; readonly reasons: readonly string[] };

export interface RegisterLimits {
  readonly maxTypes: number;
  readonly maxVersions: number;
}

/**
 * Adds a version to a type (1 for a new type, else the latest + 1), unless it equals the latest
 * (answered `unchanged`), the tenant is at its
 * type quota (a new type), the type at its version quota, or `compatible` (given the latest
 * version) answers reasons against it. A per-tenant advisory lock serialises registrations, so the
 * counts, the compatibility check and the insert see the same versions.
 */
export async function registerSchema(
  prisma: PrismaClient,
  tenantId: string,
  input: { type: string; schema: unknown; compatibility: "backward" | "none" },
  limits: RegisterLimits,
  compatible: (previous: SchemaRow) => readonly string[],
): Promise<RegisterResult> {
  return prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe(SQL.lockTenant, tenantId);
    const [counts] = await tx.$queryRawUnsafe<Array<{ types: number; versions: number }>>(SQL.counts, tenantId, input.type);
    const versions = counts?.versions ?? 0;
    const [previous] = await tx.$queryRawUnsafe<SchemaRow[]>(SQL.latestOfType, tenantId, input.type);
    // The same schema again is not a new version: PUT is idempotent.
    if (previous && previous.compatibility === input.compatibility && isDeepStrictEqual(previous.schema, input.schema)) return { unchanged: previous } as const;
    if (versions === 0 && (counts?.types ?? 0) >= limits.maxTypes) return { refused: "types_quota" } as const;
    if (versions >= limits.maxVersions) return { refused: "versions_quota" } as const;
    if (previous && input.compatibility === "backward") {
      const reasons = compatible(previous);
      if (reasons.length > 0) return { refused: "incompatible", previous, reasons } as const;
    }
    const rows = await tx.$queryRawUnsafe<SchemaRow[]>(SQL.insert, tenantId, input.type, (previous?.version ?? 0) + 1, JSON.stringify(input.schema), input.compatibility);
    return { created: rows[0]! };
  });
}

/** Removes every version of a type; false when it had none. */
export async function deleteSchema(prisma: PrismaClient, tenantId: string, type: string): Promise<boolean> {
  return (await prisma.$executeRawUnsafe(SQL.deleteType, tenantId, type)) > 0;
}
