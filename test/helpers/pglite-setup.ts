import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";

/**
 * Global setup of the pglite project: runs PGlite's initdb once into a template data dir, empty
 * (no migrations, no tables: the state `npm start` meets on a fresh data dir just after PGlite
 * initialises it). Each harness copies it instead of running initdb again (about 2 s instead of
 * 10-20 s on a busy machine); the harness then opens and migrates its copy in its own process, so
 * PGlite learns the database's types before the first migration exactly as on a first `npm start`.
 * The smoke test (test/smoke) covers initdb itself, on a data dir that does not exist yet, and
 * TEST_PGLITE_INITDB=each turns the template off.
 */
export default async function pgliteSetup(): Promise<void> {
  // TEST_PGLITE_INITDB=each: no template, every harness runs initdb itself (slower; the exact first run).
  if (process.env.TEST_PGLITE_INITDB === "each") return;
  const root = mkdtempSync(join(tmpdir(), `triggers-pglite-template-${process.pid}-`));
  const pgdata = join(root, "pgdata");
  mkdirSync(pgdata);
  const db = await PGlite.create(pgdata);
  await db.close();
  process.env.TEST_PGLITE_TEMPLATE = root;
}
