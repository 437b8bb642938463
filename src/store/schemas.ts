import { isDeepStrictEqual } from "node:util";
import type { PrismaClient } from "../generated/prisma/client";
import { execute, fragment, queryRows, sql, type Queryable, type RowOf, type RowShape, type Sql } from "./sql";

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

/** A stored version's columns as the store answers them. */
const SCHEMA_ROW = { type: "string", version: "int", schema: "json", compatibility: "string", created_at: "date" } as const;
const SCHEMA_COLUMNS = fragment("type, version, schema, compatibility, created_at");

/** Rows of a statement that answers stored versions. */
async function schemaRows<S extends RowShape>(db: Queryable, statement: string, text: Sql, shape: S): Promise<Array<RowOf<S> & SchemaRow>> {
  return (await queryRows(db, statement, text, shape)) as Array<RowOf<S> & SchemaRow>;
}

/** The latest version of each of a tenant's types (what ingest validates against). */
export async function latestSchemas(prisma: PrismaClient, tenantId: string): Promise<SchemaRow[]> {
  return schemaRows(prisma, "latestSchemas", sql`SELECT DISTINCT ON (type) ${SCHEMA_COLUMNS} FROM event_schemas WHERE tenant_id = ${tenantId} ORDER BY type, version DESC`, SCHEMA_ROW);
}

/** Every type of a tenant with its latest version and version count, by type. */
export async function listSchemas(prisma: PrismaClient, tenantId: string): Promise<SchemaSummaryRow[]> {
  return schemaRows(
    prisma,
    "listSchemas",
    sql`SELECT DISTINCT ON (type) ${SCHEMA_COLUMNS}, (count(*) OVER (PARTITION BY type))::int AS versions
              FROM event_schemas WHERE tenant_id = ${tenantId} ORDER BY type, version DESC`,
    { ...SCHEMA_ROW, versions: "int" } as const,
  );
}

/** Every version of one type, oldest first; empty when the type has no schema. */
export async function schemaVersions(prisma: PrismaClient, tenantId: string, type: string): Promise<SchemaRow[]> {
  return schemaRows(prisma, "schemaVersions", sql`SELECT ${SCHEMA_COLUMNS} FROM event_schemas WHERE tenant_id = ${tenantId} AND type = ${type} ORDER BY version`, SCHEMA_ROW);
}

/** One version of a type, or null. */
export async function schemaVersion(prisma: PrismaClient, tenantId: string, type: string, version: number): Promise<SchemaRow | null> {
  const rows = await schemaRows(prisma, "schemaVersion", sql`SELECT ${SCHEMA_COLUMNS} FROM event_schemas WHERE tenant_id = ${tenantId} AND type = ${type} AND version = ${version}`, SCHEMA_ROW);
  return rows[0] ?? null;
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
    await execute(tx, sql`SELECT 1 FROM pg_advisory_xact_lock(hashtextextended('event_schemas:' || ${tenantId}, 0))`);
    const [counts] = await queryRows(
      tx,
      "schemaCounts",
      sql`SELECT (SELECT count(DISTINCT type) FROM event_schemas WHERE tenant_id = ${tenantId})::int AS types,
                 (SELECT count(*) FROM event_schemas WHERE tenant_id = ${tenantId} AND type = ${input.type})::int AS versions`,
      { types: "int", versions: "int" },
    );
    const versions = counts?.versions ?? 0;
    const [previous] = await schemaRows(
      tx,
      "latestSchemaOfType",
      sql`SELECT ${SCHEMA_COLUMNS} FROM event_schemas WHERE tenant_id = ${tenantId} AND type = ${input.type} ORDER BY version DESC LIMIT 1`,
      SCHEMA_ROW,
    );
    // The same schema again is not a new version: PUT is idempotent.
    if (previous && previous.compatibility === input.compatibility && isDeepStrictEqual(previous.schema, input.schema)) return { unchanged: previous } as const;
    if (versions === 0 && (counts?.types ?? 0) >= limits.maxTypes) return { refused: "types_quota" } as const;
    if (versions >= limits.maxVersions) return { refused: "versions_quota" } as const;
    if (previous && input.compatibility === "backward") {
      const reasons = compatible(previous);
      if (reasons.length > 0) return { refused: "incompatible", previous, reasons } as const;
    }
    const rows = await schemaRows(
      tx,
      "insertSchema",
      sql`INSERT INTO event_schemas (tenant_id, type, version, schema, compatibility)
          VALUES (${tenantId}, ${input.type}, ${(previous?.version ?? 0) + 1}, ${JSON.stringify(input.schema)}::jsonb, ${input.compatibility})
          RETURNING ${SCHEMA_COLUMNS}`,
      SCHEMA_ROW,
    );
    return { created: rows[0]! };
  });
}

/** Removes every version of a type; false when it had none. */
export async function deleteSchema(prisma: PrismaClient, tenantId: string, type: string): Promise<boolean> {
  return (await execute(prisma, sql`DELETE FROM event_schemas WHERE tenant_id = ${tenantId} AND type = ${type}`)) > 0;
}
