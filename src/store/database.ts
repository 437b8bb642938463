import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client";
import { pgExecutor, pgliteExecutor } from "./migrate/pg-executor";
import type { SqlExecutor } from "./migrate/migrations";
import { pgConnectionOptions, type DatabaseAuth } from "./db-connection";

/** The database handles a process needs: Prisma for queries, a SqlExecutor for migrations. */
export interface Database {
  readonly prisma: PrismaClient;
  readonly migrator: SqlExecutor;
  /** "postgres" or "pglite" (embedded). */
  readonly kind: "postgres" | "pglite";
  /** Cheap liveness probe. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Splits Prisma's `?schema=` convention off a Postgres URL. */
export function parseDatabaseUrl(url: string): { connectionString: string; schema: string | undefined } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get("schema") ?? undefined;
  parsed.searchParams.delete("schema");
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new Error("DATABASE_URL ?schema= must be a plain identifier");
  }
  return { connectionString: parsed.toString(), schema };
}

/**
 * Connects to a real Postgres server; pool size bounds this process's connections. TLS and the
 * password source (IAM token, Secrets Manager secret, file) come from pgConnectionOptions.
 */
export function connectPostgres(url: string, opts: { poolSize?: number; auth?: DatabaseAuth } = {}): Database {
  const { connectionString, schema } = parseDatabaseUrl(url);
  const connection = pgConnectionOptions(connectionString, opts.auth);
  const poolConfig = {
    ...connection.options,
    max: opts.poolSize ?? 10,
    // Raw SQL uses unqualified table names; search_path points them at the configured schema.
    ...(schema ? { options: `-c search_path="${schema}"` } : {}),
    connectionTimeoutMillis: 5000,
  };
  const pool = new Pool(poolConfig);
  pool.on("error", () => undefined); // idle-client errors surface on the next query instead of crashing
  const migrationPool = new Pool({ ...poolConfig, max: 2 });
  migrationPool.on("error", () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, schema ? { schema } : undefined) });
  return {
    prisma,
    migrator: pgExecutor(migrationPool),
    kind: "postgres",
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await Promise.allSettled([pool.end(), migrationPool.end()]);
      connection.close();
    },
  };
}

/** Opens (creating if needed) the embedded PGlite database in `dataDir`/pgdata. */
export async function openEmbedded(dataDir: string): Promise<Database> {
  const dir = join(dataDir, "pgdata");
  mkdirSync(dir, { recursive: true });
  const pglite = await PGlite.create(dir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    prisma,
    migrator: pgliteExecutor(pglite),
    kind: "pglite",
    async ping() {
      await pglite.query("SELECT 1");
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pglite.close();
    },
  };
}

/** Opens the configured database: Postgres at `databaseUrl`, or the embedded PGlite in `dataDir`. */
export async function openDatabase(
  config: { databaseUrl: string | undefined; dataDir: string; databaseAuth?: DatabaseAuth; sqs?: { region: string } },
  opts: { poolSize?: number } = {},
): Promise<Database> {
  if (!config.databaseUrl) return openEmbedded(config.dataDir);
  const auth = config.databaseAuth && { ...config.databaseAuth, ...(config.sqs ? { region: config.sqs.region } : {}) };
  return connectPostgres(config.databaseUrl, { ...opts, ...(auth ? { auth } : {}) });
}
