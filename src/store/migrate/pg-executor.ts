import type { Pool, PoolClient } from "pg";
import type { PGlite } from "@electric-sql/pglite";
import type { SqlExecutor } from "./migrations";

/**
 * Runs `fn` on a client checked out of `pool`, then releases it; released as broken when its
 * connection failed meanwhile, or when `fn` calls `broken(err)`. The pool listens for a client's
 * 'error' only while it is idle: a connection dropped while `fn` holds it (a statement past its
 * deadline is dropped by the client, then `fn` sends another, such as an unlock in a finally)
 * emits 'error' once its socket ends, and without this listener that is an uncaught exception,
 * the end of the process.
 */
export async function withPoolClient<T>(pool: Pool, fn: (client: PoolClient, broken: (err: Error) => void) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let failure: Error | undefined;
  const broken = (err: Error) => {
    failure ??= err;
  };
  client.on("error", broken);
  try {
    return await fn(client, broken);
  } finally {
    // Released first: from then on the pool's own listener is attached.
    client.release(failure);
    client.removeListener("error", broken);
  }
}

/** A SqlExecutor over a node-postgres pool: one checked-out client per transaction. */
export function pgExecutor(pool: Pool): SqlExecutor {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const res = await pool.query(sql, params as unknown[]);
      return res.rows as R[];
    },
    async transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T> {
      return withPoolClient(pool, async (client) => {
        try {
          await client.query("BEGIN");
          const result = await fn({
            async query<R>(sql: string, params: readonly unknown[] = []) {
              const res = await client.query(sql, params as unknown[]);
              return res.rows as R[];
            },
          });
          await client.query("COMMIT");
          return result;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err;
        }
      });
    },
  };
}

/** A SqlExecutor over an embedded PGlite database. */
export function pgliteExecutor(db: PGlite): SqlExecutor {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const res = await db.query<R>(sql, params as unknown[]);
      return res.rows;
    },
    async transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T> {
      return db.transaction(async (t) =>
        fn({
          async query<R>(sql: string, params: readonly unknown[] = []) {
            const res = await t.query<R>(sql, params as unknown[]);
            return res.rows;
          },
        }),
      );
    },
  };
}
