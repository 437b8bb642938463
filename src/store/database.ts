import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client, Pool, type QueryConfig } from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import type { PGlite } from "@electric-sql/pglite";
import { PrismaClient } from "../generated/prisma/client";
import { pgExecutor, pgliteExecutor, withPoolClient } from "./migrate/pg-executor";
import type { SqlExecutor } from "./migrate/migrations";
import { pgConnectionOptions, type DatabaseAuth } from "./db-connection";
import { isDatabaseUnavailable } from "./db-errors";
import { preparedName } from "./sql";

/** The database handles a process needs: Prisma for queries, a SqlExecutor for migrations. */
export interface Database {
  readonly prisma: PrismaClient;
  readonly migrator: SqlExecutor;
  /** "postgres" or "pglite" (embedded). */
  readonly kind: "postgres" | "pglite";
  /** Cheap liveness probe. */
  ping(): Promise<void>;
  /**
   * Runs `fn` on one connection of its own, outside any transaction, each statement sent alone:
   * for what must not run in a transaction block (DETACH PARTITION ... CONCURRENTLY) and for a
   * session-level advisory lock. Postgres: a client of the pool, with its statement deadline;
   * PGlite: the embedded instance (one session for the whole process).
   */
  session<T>(fn: (query: SessionQuery) => Promise<T>): Promise<T>;
  /**
   * LISTENs on `channel` (a plain lower-case identifier) on a connection of its own (Postgres) or
   * the embedded instance (PGlite). `onLost` runs once if the connection fails later; the caller
   * then listens again.
   */
  listen(channel: string, onPayload: (payload: string) => void, onLost: () => void): Promise<Listener>;
  close(): Promise<void>;
}

/**
 * One statement on a session (positional $n parameters); answers its rows. `timeoutMs` replaces
 * the pool's statement deadline for this statement (server and client side), for statements that
 * wait on others by design (DETACH PARTITION ... CONCURRENTLY waits for transactions using the table).
 */
export type SessionQuery = <R = Record<string, unknown>>(sql: string, params?: readonly unknown[], opts?: { readonly timeoutMs?: number }) => Promise<R[]>;

/** An active LISTEN; close() ends it. */
export interface Listener {
  /** A round trip on the listening connection itself (the caller bounds it with a deadline). */
  check(): Promise<void>;
  /** Ends the connection; bounded even when the server does not answer. */
  close(): Promise<void>;
}

/** Longest wait for a LISTEN connection to end politely before its socket is destroyed, ms. */
const LISTENER_END_MS = 1000;

/** Ends a client, destroying its socket if the server does not acknowledge in time (a frozen server never does). */
async function endClient(client: Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().catch(() => undefined);
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), LISTENER_END_MS)));
  const outcome = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (outcome === "late") (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
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

/** Deadlines of a Postgres pool, ms (config DB_QUERY_TIMEOUT_MS, DB_CONNECT_TIMEOUT_MS). */
export interface PgDeadlines {
  readonly queryTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

/**
 * Connects to a real Postgres server; pool size bounds this process's connections. TLS and the
 * password source (IAM token, Secrets Manager secret, file) come from pgConnectionOptions.
 */
export function connectPostgres(url: string, opts: { poolSize?: number; auth?: DatabaseAuth } & PgDeadlines = {}): Database {
  const { connectionString, schema } = parseDatabaseUrl(url);
  const connection = pgConnectionOptions(connectionString, opts.auth);
  const poolConfig = {
    ...connection.options,
    max: opts.poolSize ?? 10,
    // Raw SQL uses unqualified table names; search_path points them at the configured schema.
    ...(schema ? { options: `-c search_path="${schema}"` } : {}),
    // A pooled or new connection within this, or the query fails (a frozen server accepts TCP and never answers).
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    // TCP keepalive finds a dead peer on idle connections.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  // Every statement has a deadline on both sides: the server cancels it, and the client gives up
  // when the server cannot even say so.
  const queryTimeout = opts.queryTimeoutMs ?? 5000;
  const pool = new Pool({ ...poolConfig, statement_timeout: queryTimeout, query_timeout: queryTimeout + 250 });
  pool.on("error", () => undefined); // idle-client errors surface on the next query instead of crashing
  // Migrations may legitimately run long (index builds): no statement deadline there.
  const migrationPool = new Pool({ ...poolConfig, max: 2 });
  migrationPool.on("error", () => undefined);
  const prisma = new PrismaClient({
    adapter: new PrismaPg(pool, { ...(schema ? { schema } : {}), statementNameGenerator: (q) => preparedName(q.sql) as string }), // undefined: an unnamed statement
  });
  return {
    prisma,
    migrator: pgExecutor(migrationPool),
    kind: "postgres",
    async ping() {
      await pool.query("SELECT 1");
    },
    async session(fn) {
      return withPoolClient(pool, (client, broken) =>
        fn(async <R>(text: string, params: readonly unknown[] = [], opts: { readonly timeoutMs?: number } = {}) => {
          try {
            if (opts.timeoutMs === undefined) return (await client.query(text, params as unknown[])).rows as R[];
            const ms = Math.max(1, Math.floor(opts.timeoutMs));
            await client.query(`SET statement_timeout = ${ms}`);
            try {
              // query_timeout per query: node-postgres reads it from the query's config.
              const config = { text, values: params as unknown[], query_timeout: ms + 250 } as QueryConfig;
              return (await client.query(config)).rows as R[];
            } finally {
              await client.query("RESET statement_timeout");
            }
          } catch (err) {
            // A deadline or a lost connection leaves the client unusable: it is not returned to the pool.
            if (isDatabaseUnavailable(err)) broken(err as Error);
            throw err;
          }
        }),
      );
    },
    async listen(channel, onPayload, onLost) {
      // A dedicated client: a pooled one would be handed to queries and lose its LISTEN.
      const client = new Client({ ...poolConfig, keepAlive: true, query_timeout: 5000 });
      let lost = false;
      const fail = () => {
        if (lost) return;
        lost = true;
        void endClient(client);
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
        await endClient(client);
        throw err;
      }
      return {
        async check() {
          await client.query("SELECT 1");
        },
        async close() {
          lost = true;
          await endClient(client);
        },
      };
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await Promise.allSettled([pool.end(), migrationPool.end()]);
      connection.close();
    },
  };
}

/**
 * Opens (creating if needed) the embedded PGlite database in `dataDir`/pgdata. PGlite and its
 * Prisma adapter are loaded here, on first use, not when this module is: only `start` uses them,
 * and the production image leaves them out (Dockerfile, deps stage).
 */
export async function openEmbedded(dataDir: string): Promise<Database> {
  const dir = join(dataDir, "pgdata");
  mkdirSync(dir, { recursive: true });
  // require, as the static imports this replaces compiled to (the same CommonJS builds and types).
  const { PGlite } = require("@electric-sql/pglite") as typeof import("@electric-sql/pglite");
  const { PrismaPGlite } = require("pglite-prisma-adapter") as typeof import("pglite-prisma-adapter");
  const pglite = await PGlite.create(dir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    prisma,
    migrator: typeLearningExecutor(pglite, pgliteExecutor(pglite)),
    kind: "pglite",
    async ping() {
      await pglite.query("SELECT 1");
    },
    async session(fn) {
      // Without parameters, the simple protocol: a statement that must run alone is sent alone.
      return fn(async <R>(text: string, params: readonly unknown[] = []) =>
        params.length === 0 ? ((await pglite.exec(text)).at(-1)?.rows ?? []) as R[] : (await pglite.query<R>(text, params as unknown[])).rows);
    },
    async listen(channel, onPayload) {
      // In-process: the embedded database delivers NOTIFYs raised by this process's own queries.
      const unlisten = await pglite.listen(channel, onPayload);
      return {
        async check() {
          await pglite.query("SELECT 1");
        },
        close: () => unlisten(),
      };
    },
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pglite.close();
    },
  };
}

/** Statements that may create, rename or drop a type, and so the array type PGlite must learn. */
const MAY_CHANGE_TYPES = /\b(CREATE|ALTER|DROP)\b/i;

/**
 * PGlite serializes each query parameter by the type the server reports for it, from a table of
 * array types it reads from pg_type once, in PGlite.create. An array type created after that (by
 * the first migration on a fresh data dir: event_status[]) has no entry, so a JS array parameter of
 * it is sent as `String(array)`, "a,b,c", and Postgres answers 22P02 malformed array literal. The
 * same process then fails until restart, which is what a newcomer's first `npm start` hit on every
 * peek. This wraps the migration executor so that PGlite re-reads its array types after any
 * statement that may have changed them (migrations are the only DDL this service runs).
 */
export function typeLearningExecutor(pglite: Pick<PGlite, "refreshArrayTypes">, inner: SqlExecutor): SqlExecutor {
  return {
    async query<R>(sql: string, params?: readonly unknown[]) {
      try {
        return await inner.query<R>(sql, params);
      } finally {
        if (MAY_CHANGE_TYPES.test(sql)) await pglite.refreshArrayTypes();
      }
    },
    async transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T> {
      let ddl = false;
      try {
        return await inner.transaction((tx) =>
          fn({
            query<R>(sql: string, params?: readonly unknown[]) {
              if (MAY_CHANGE_TYPES.test(sql)) ddl = true;
              return tx.query<R>(sql, params);
            },
          }),
        );
      } finally {
        // After the commit (or rollback): inside the transaction PGlite's lock is held by it.
        if (ddl) await pglite.refreshArrayTypes();
      }
    },
  };
}

/** Opens the configured database: Postgres at `databaseUrl`, or the embedded PGlite in `dataDir`. */
export async function openDatabase(
  config: { databaseUrl: string | undefined; dataDir: string; databaseAuth?: DatabaseAuth; sqs?: { region: string }; db?: PgDeadlines },
  opts: { poolSize?: number } = {},
): Promise<Database> {
  if (!config.databaseUrl) return openEmbedded(config.dataDir);
  const auth = config.databaseAuth && { ...config.databaseAuth, ...(config.sqs ? { region: config.sqs.region } : {}) };
  return connectPostgres(config.databaseUrl, { ...config.db, ...opts, ...(auth ? { auth } : {}) });
}
