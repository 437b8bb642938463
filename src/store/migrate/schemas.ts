/**
 * Statements on whole schemas (the `?schema=` of a database URL): creating the one a deployment's
 * tables live in, and throwaway ones for tests and benches. DDL takes no bind parameters, so the
 * name is quoted as an identifier.
 */

/** `name` as a quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function createSchemaStatement(schema: string, opts: { ifNotExists?: boolean } = {}): string {
  return `CREATE SCHEMA ${opts.ifNotExists ? "IF NOT EXISTS " : ""}${quoteIdent(schema)}`;
}

export function dropSchemaStatement(schema: string): string {
  return `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`;
}
