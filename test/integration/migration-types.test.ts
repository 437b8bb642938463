import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyMigrations, defaultMigrationsDir, loadMigrations } from "../../src/store/migrate/migrations";
import { startHarness, type Harness } from "../helpers/harness";

/**
 * A type a migration creates is usable as a query parameter in the same process that applied the
 * migration, with no restart. On a fresh PGlite data dir this is the newcomer's first `npm start`:
 * the first migration creates event_status, and GET /inbox?mode=peek sends an event_status[].
 */
describe("types created by migrations, in the process that applied them", () => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    // The project's migrations plus a later, test-only one (never in prisma/migrations).
    dir = mkdtempSync(join(tmpdir(), "triggers-migrations-"));
    cpSync(defaultMigrationsDir(), dir, { recursive: true });
    mkdirSync(join(dir, "29991231000000_test_colour_enum"));
    writeFileSync(
      join(dir, "29991231000000_test_colour_enum", "migration.sql"),
      `CREATE TYPE "test_colour" AS ENUM ('red', 'green', 'blue');\nCREATE TABLE "test_paint" ("id" TEXT PRIMARY KEY, "colour" "test_colour" NOT NULL);\n`,
    );
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h.close();
  });

  test("the first migration's event_status[] works as a parameter at once (peek every status)", async () => {
    const rows = await h.c.db.prisma.$queryRaw<Array<{ s: string[] }>>`SELECT ${["pending", "dead"]}::event_status[]::text[] AS s`;
    expect(rows[0]!.s).toEqual(["pending", "dead"]);
    const key = await h.key("types-peek");
    const peek = await h.request("GET", "/inbox?mode=peek", { key });
    expect(peek.status).toBe(200);
  });

  test("an enum a later migration adds is usable as an array parameter, and comes back as an array", async () => {
    const result = await applyMigrations(h.c.db.migrator, loadMigrations(dir));
    expect(result.applied).toEqual(["29991231000000_test_colour_enum"]);
    const prisma = h.c.db.prisma;
    await prisma.$executeRaw`INSERT INTO test_paint (id, colour) SELECT 'p' || i, c FROM unnest(${["red", "blue", "green"]}::test_colour[]) WITH ORDINALITY AS t(c, i)`;
    const picked = await prisma.$queryRaw<Array<{ id: string }>>`SELECT id FROM test_paint WHERE colour = ANY(${["red", "green"]}::test_colour[]) ORDER BY id`;
    expect(picked.map((r) => r.id)).toEqual(["p1", "p3"]);
    // Through the migration executor as well (what tests and the CLI's SQL go through).
    const viaMigrator = await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM test_paint WHERE colour = ANY($1::test_colour[])", [["blue"]]);
    expect(viaMigrator[0]!.n).toBe(1);
  });
});
