import type { Pool } from "pg";
import type { PGlite } from "@electric-sql/pglite";
import type { SqlExecutor } from "./migrations";

/** A SqlExecutor over a node-postgres pool: one checked-out client per transaction. */
export function pgExecutor(pool: Pool): SqlExecutor {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []) {
      const res = await pool.query(sql, params as unknown[]);
      return res.rows as R[];
    },
    async transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // A checked-out client has no 'error' listener of the pool's: one dropped mid-transaction
      // would otherwise be an uncaught exception. The failure reaches the caller through its query.
      let broken: Error | undefined;
      const onError = (err: Error) => {
        broken ??= err;
      };
      client.on("error", onError);
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
      } finally {
        client.release(broken);
        client.removeListener("error", onError);
      }
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
