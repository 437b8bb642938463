import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { splitSqlStatements } from "./split-sql";

/** One migration folder in Prisma's layout: prisma/migrations/<timestamp>_<name>/migration.sql. */
export interface Migration {
  readonly name: string;
  readonly sql: string;
  /** sha256 hex of migration.sql, the value Prisma stores in _prisma_migrations.checksum. */
  readonly checksum: string;
  readonly statements: readonly string[];
}

/**
 * What a migration runner needs from a database connection. Implemented over node-postgres,
 * PGlite and the RDS Data API; each runs one statement per call.
 */
export interface SqlExecutor {
  /** Runs one statement with positional ($1…) parameters and returns its rows. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Runs fn inside one transaction; statements issued through `tx` commit or roll back together. */
  transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T>;
}

/** prisma/migrations of the project, found from this file whether it runs from src/ or the built dist/src/. */
export function defaultMigrationsDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "prisma", "migrations");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error("prisma/migrations not found above " + __dirname);
}

/** Reads every migration folder, ordered by name (the timestamp prefix). */
export function loadMigrations(dir: string = defaultMigrationsDir()): Migration[] {
  if (!existsSync(dir)) throw new Error(`migrations folder not found: ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "migration.sql")))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      return {
        name,
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
        statements: splitSqlStatements(sql),
      };
    });
}

/** Prisma's own bookkeeping table, created exactly as `prisma migrate deploy` creates it. */
export const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** The advisory lock key Prisma Migrate takes, so our runner and `prisma migrate deploy` exclude each other. */
export const MIGRATION_LOCK_KEY = 72707369;

export interface MigrateResult {
  readonly applied: string[];
  readonly alreadyApplied: string[];
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
}

/**
 * Applies pending migrations in order, each in its own transaction, recording each in
 * _prisma_migrations the way Prisma does. Refuses to run when an applied migration's file changed
 * or a previous attempt failed half-way (the same rules as `prisma migrate deploy`).
 */
export async function applyMigrations(
  db: SqlExecutor,
  migrations: readonly Migration[] = loadMigrations(),
  log: (line: string) => void = () => undefined,
): Promise<MigrateResult> {
  await db.query(CREATE_MIGRATIONS_TABLE);
  return db.transaction(async (tx) => {
    // Transaction-scoped, so it is released even when a migration fails.
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    const failed = await tx.query<{ migration_name: string }>(
      `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NULL AND rolled_back_at IS NULL`,
    );
    if (failed.length > 0) {
      throw new Error(
        `migration ${failed[0]!.migration_name} failed earlier; resolve it (prisma migrate resolve) before applying more`,
      );
    }
    const rows = await tx.query<AppliedRow>(
      `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE rolled_back_at IS NULL AND finished_at IS NOT NULL`,
    );
    const done = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const applied: string[] = [];
    const alreadyApplied: string[] = [];
    for (const m of migrations) {
      const recorded = done.get(m.name);
      if (recorded !== undefined) {
        if (recorded !== m.checksum) {
          throw new Error(`migration ${m.name} was modified after it was applied (checksum mismatch)`);
        }
        alreadyApplied.push(m.name);
        continue;
      }
      const id = randomUUID();
      await tx.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`,
        [id, m.checksum, m.name],
      );
      for (const statement of m.statements) await tx.query(statement);
      await tx.query(
        `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
        [id],
      );
      applied.push(m.name);
      log(`applied migration ${m.name}`);
    }
    return { applied, alreadyApplied };
  });
}
