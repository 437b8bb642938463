/**
 * The errors a broken Postgres connection really produces, through the service's own pool and
 * Prisma client, are each recognised as "the database is unavailable" (503 + Retry-After), never
 * as an internal error (500): a connection reset while idle or mid-query, one the server ended
 * mid-query, a transaction that finds no connection in time, connects refused.
 */
import Koa from "koa";
import type { AddressInfo } from "node:net";
import { errorHandler } from "../../src/api/middleware/errors";
import { isDatabaseUnavailable } from "../../src/store/db-errors";
import { createLogger } from "../../src/observability/logger";
import { connectPostgres, type Database } from "../../src/store/database";
import { createTestSchema, onlyOn } from "../helpers/harness";
import { TcpProxy } from "../helpers/tcp-proxy";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The error `fn` rejects with (the test fails if it resolves). */
async function failure(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail");
}

onlyOn("postgres", "needs a TCP path to a real Postgres to break").describe("a broken Postgres connection is 'unavailable', not an internal error", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let proxy: TcpProxy;
  let db: Database;
  const slowQuery = () => db.prisma.$queryRaw`SELECT pg_sleep(0.3), 1 AS x`;
  const query = () => db.prisma.$queryRaw`SELECT 1 AS x`;

  beforeAll(async () => {
    schema = await createTestSchema();
    proxy = await TcpProxy.forUrl(schema.url).start();
    db = connectPostgres(proxy.rewrite(schema.url), { poolSize: 2, queryTimeoutMs: 1500, connectTimeoutMs: 500 });
  });
  afterAll(async () => {
    await db.close();
    await proxy.stop();
    await schema.drop();
  });
  beforeEach(async () => {
    proxy.thaw();
    proxy.restore();
    await query(); // a pooled connection to break
  });

  test("an idle pooled connection reset by the network", async () => {
    proxy.reset();
    const err = await failure(query);
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  test("a connection reset mid-query", async () => {
    const pending = failure(slowQuery);
    await sleep(100);
    proxy.reset();
    expect(isDatabaseUnavailable(await pending)).toBe(true);
  });

  test("a connection the server ends mid-query", async () => {
    const pending = failure(slowQuery);
    await sleep(100);
    proxy.cut();
    expect(isDatabaseUnavailable(await pending)).toBe(true);
  });

  test("a transaction that gets no connection in time (a frozen server)", async () => {
    proxy.freeze("accept");
    const err = await failure(() => db.prisma.$transaction(async (tx) => tx.$queryRaw`SELECT 1`, { maxWait: 300, timeout: 2000 }));
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  test("a transaction that runs past its timeout (a slow server under load)", async () => {
    const err = await failure(() =>
      db.prisma.$transaction(
        async (tx) => {
          await tx.$queryRaw`SELECT pg_sleep(0.4)::text AS slept`;
          return tx.$queryRaw`SELECT 1`;
        },
        { timeout: 200 },
      ),
    );
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  test("a session whose statement times out on a frozen server, then sends another, fails without crashing the process", async () => {
    // retirePartitions' shape: a statement of the session times out (the client drops that
    // connection), then its finally sends the unlock on the same session. The dropped connection's
    // 'error' event must land on a listener: one emitted on a checked-out client with none would be
    // an uncaught exception, the end of a scheduler.
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => void uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    try {
      const err = await failure(() =>
        db.session(async (q) => {
          await q("SELECT 1");
          proxy.freeze("mid-connection");
          try {
            await q("SELECT 1");
          } finally {
            await q("SELECT 2").catch(() => undefined);
          }
        }),
      );
      expect(isDatabaseUnavailable(err)).toBe(true);
      await sleep(300); // the dropped connection's 'end' and 'error' arrive after the rejections
      expect(uncaught).toEqual([]);
      // And the pool recovers: a new session works once the server answers again.
      proxy.thaw({ strand: true });
      await expect(db.session((q) => q<{ x: number }>("SELECT 1 AS x"))).resolves.toEqual([{ x: 1 }]);
    } finally {
      process.off("uncaughtException", onUncaught);
    }
  });

  test("connects refused", async () => {
    proxy.cut();
    expect(isDatabaseUnavailable(await failure(query))).toBe(true);
  });

  test("a query error of the caller's own is not unavailability", async () => {
    expect(isDatabaseUnavailable(await failure(() => db.prisma.$queryRaw`SELECT * FROM no_such_table`))).toBe(false);
  });

  test("the API renders the reset as 503 with Retry-After", async () => {
    proxy.reset();
    const err = await failure(query);
    const app = new Koa();
    app.silent = true;
    const lines: string[] = [];
    app.use(errorHandler(createLogger("warn", { write: (l: string) => void lines.push(l) })));
    app.use(() => {
      throw err;
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(lines.join("")).not.toContain('"level":50');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
