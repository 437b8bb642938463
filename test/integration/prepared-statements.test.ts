/**
 * The worker's insert runs as a named prepared statement on Postgres (parsed once per connection,
 * its plan kept by Postgres), and a prepared statement whose plan a schema change made stale costs
 * one failed call, not a broken connection for good.
 */
import { benchEvents } from "../../bench/support";
import { insertEvents } from "../../src/store/events/insert-events";
import { prepared, queryRows, sql } from "../../src/store/sql";
import { onlyOn, openTestDatabase } from "../helpers/harness";

onlyOn("postgres", "prepared statements are the node-postgres adapter's").describe("prepared statements", () => {
  let t: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    // One connection, so the session below sees the statements the calls before it prepared.
    t = await openTestDatabase({ poolSize: 1 });
  });
  afterAll(() => t.close());

  const preparedOnConnection = async () =>
    (await t.db.session((q) => q<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name"))).map((r) => r.name);

  test("insertEvents is prepared once and reused", async () => {
    expect(await insertEvents(t.db.prisma, benchEvents(3))).toBe(3);
    expect(await insertEvents(t.db.prisma, benchEvents(5))).toBe(5);
    const names = (await preparedOnConnection()).filter((n) => n.startsWith("insert_events_"));
    expect(names).toHaveLength(1);
  });

  test("a stale plan fails one call, then the statement is prepared again on a new connection", async () => {
    await t.db.migrator.query("CREATE TABLE prepared_probe (a int)");
    await t.db.migrator.query("INSERT INTO prepared_probe VALUES (1)");
    const read = () => queryRows(t.db.prisma, "probe", prepared("probe", sql`SELECT * FROM prepared_probe`), { a: "int" });
    expect(await read()).toEqual([{ a: 1 }]);
    await t.db.migrator.query("ALTER TABLE prepared_probe ADD COLUMN b int");
    await expect(read()).rejects.toThrow(/cached plan must not change result type/);
    // The connection holding the stale statement was dropped: the next call prepares it anew.
    await expect(read()).resolves.toEqual([{ a: 1, b: null }]);
  });
});
