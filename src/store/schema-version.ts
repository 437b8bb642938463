import type { PrismaClient } from "../generated/prisma/client";
import { loadMigrations } from "./migrate/migrations";
import { queryRows, sql } from "./sql";

/**
 * A readiness check (`schema` in /readyz): resolves when every migration this build ships is applied
 * (finished and not rolled back in `_prisma_migrations`); rejects, naming what is missing and the
 * command that applies it, otherwise. A role started before its migration ran (a deploy whose
 * migrate step has not finished, or was skipped) thus stays out of service and says why, instead
 * of failing request by request. A database ahead of the build (the next release's migrations
 * applied first, as expand/contract wants) is ready. Once satisfied it stays satisfied without
 * asking again: migrations are never unapplied under a running process.
 */
export function schemaCurrentCheck(prisma: PrismaClient, expected: readonly string[] = loadMigrations().map((m) => m.name)): () => Promise<void> {
  let current = false;
  return async () => {
    if (current) return;
    let applied: Set<string>;
    try {
      const rows = await queryRows(
        prisma,
        "appliedMigrations",
        sql`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
        { migration_name: "string" },
      );
      applied = new Set(rows.map((r) => r.migration_name));
    } catch (err) {
      const message = String((err as Error)?.message ?? err);
      if (/42P01|relation "?[^ ]*_prisma_migrations"? does not exist/.test(message)) {
        throw new Error(`the database has no migrations applied (this build needs ${expected.length}): run \`triggers migrate\``);
      }
      throw err;
    }
    const missing = expected.filter((name) => !applied.has(name));
    if (missing.length > 0) {
      throw new Error(`the database lacks ${missing.length} migration(s) this build needs (first: ${missing[0]}): run \`triggers migrate\``);
    }
    current = true;
  };
}
