import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client, Pool } from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "../generated/prisma/client";
import { pgExecutor, pgliteExecutor } from "./migrate/pg-executor";
import type { SqlExecutor } from "./migrate/migrations";

/** The database handles a process needs: Prisma for queries, a SqlExecutor for migrations. */
export interface Database {
  readonly prisma: PrismaClient;
  readonly migrator: SqlExecutor;
  /** "postgres" or "pglite" (embedded). */
  readonly kind: "postgres" | "pglite";
  /** Cheap liveness probe. */
  ping(): Promise<void>;
  /**
   * LISTENs on `channel` (a plain lower-case identifier) on a connection of its own (Postgres) or
   * the embedded instance (PGlite). `onLost` runs once if the connection fails later; the caller
   * then listens again.
   */
  listen(channel: string, onPayload: (payload: string) => void, onLost: () => void): Promise<Listener>;
  close(): Promise<void>;
}

/** An active LISTEN; close() ends it. */
export interface Listener {
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

/** Connects to a real Postgres server; pool size bounds this process's connections. */
export function connectPostgres(url: string, opts: { poolSize?: number } = {}): Database {
  const { connectionString, schema } = parseDatabaseUrl(url);
  const poolConfig = {
    connectionString,
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
    async listen(channel, onPayload, onLost) {
      // A dedicated client: a pooled one would be handed to queries and lose its LISTEN.
      const client = new Client({ ...poolConfig, keepAlive: true, query_timeout: 5000 });
      let lost = false;
      const fail = () => {
        if (lost) return;
        lost = true;
        client.end().catch(() => undefined);
        onLost();
      };
      client.on("error", fail);
      client.on("end", fail);
      client.on("notification", (msg) => {
        if (msg.channel === channel) onPayload(msg.payload ?? "");
      });
      try {
        await client.connect();
        await client.query(`LISTEN "${channel.replace(/"/g, "")}"`);
      } catch (err) {
        lost = true;
        await client.end().catch(() => undefined);
        throw err;
      }
      return {
        async close() {
          lost = true;
          await client.end().catch(() => undefined);
        },
      };
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await Promise.allSettled([pool.end(), migrationPool.end()]);
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
    async listen(channel, onPayload) {
      // In-process: the embedded database delivers NOTIFYs raised by this process's own queries.
      const unlisten = await pglite.listen(channel, onPayload);
      return { close: () => unlisten() };
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pglite.close();
    },
  };
}

/** Opens the configured database: Postgres at `databaseUrl`, or the embedded PGlite in `dataDir`. */
export async function openDatabase(config: { databaseUrl: string | undefined; dataDir: string }, opts: { poolSize?: number } = {}): Promise<Database> {
  return config.databaseUrl ? connectPostgres(config.databaseUrl, opts) : openEmbedded(config.dataDir);
}
