import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/*
 * Where code may live (docs/layout.md): SQL only in src/store, Koa only in src/api. A statement
 * or an import in the wrong folder fails here with its file and line. Statements are composed with
 * Prisma.sql (src/store/sql.ts), so values are always bind parameters: no statement text runs
 * through $queryRawUnsafe / $executeRawUnsafe anywhere (the migration runner executes whole files
 * through its own executor, src/store/migrate, not through Prisma).
 */

const ROOT = join(__dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return d.name === "generated" || d.name === "node_modules" ? [] : sourceFiles(path);
    return d.name.endsWith(".ts") ? [path] : [];
  });
}

/** The code of a file without its comments (block comments kept as blank lines, so line numbers hold). */
function code(text: string): string[] {
  const noBlocks = text.replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, " "));
  return noBlocks.split("\n").map((line) => line.replace(/(^|\s)\/\/.*$/, ""));
}

/** Statements, raw-query calls and statement composition, as written in TypeScript. */
const SQL = [
  /\$(?:queryRaw|executeRaw)(?:Unsafe)?\b/,
  /\bPrisma\.(?:sql|raw|join)\b/,
  /\bSELECT\s+(?:[\w*("']|$)/,
  /\bINSERT\s+INTO\b/,
  /\bUPDATE\s+\w+(?:\s+\w+)?\s+SET\b/,
  /\bDELETE\s+FROM\b/,
  /\b(?:CREATE|DROP|ALTER)\s+(?:SCHEMA|TABLE|INDEX|TYPE)\b/,
  /\bpg_(?:notify|advisory\w*)\s*\(/,
];
/** Statement text run as is, its values spliced in or numbered by hand. */
const UNSAFE = /\$(?:queryRaw|executeRaw)Unsafe\b/;
const KOA = /\bfrom\s+["'](?:koa|@koa\/[\w-]+|koa-[\w-]+)["']|require\(["'](?:koa|@koa\/[\w-]+|koa-[\w-]+)["']\)/;

/** file:line of every line of `files` that matches one of `patterns`. */
function offenders(files: readonly string[], patterns: readonly RegExp[]): string[] {
  return files.flatMap((file) =>
    code(readFileSync(file, "utf8")).flatMap((line, i) => (patterns.some((p) => p.test(line)) ? [`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`] : [])),
  );
}

const src = (...parts: string[]) => join(ROOT, "src", ...parts);
const all = [...sourceFiles(join(ROOT, "src")), ...sourceFiles(join(ROOT, "workers"))];

describe("module boundaries", () => {
  it("no SQL outside src/store", () => {
    expect(offenders(all.filter((f) => !f.startsWith(src("store") + "/")), SQL)).toEqual([]);
  });

  it("no statement runs through $queryRawUnsafe / $executeRawUnsafe", () => {
    expect(offenders(all, [UNSAFE])).toEqual([]);
  });

  it("no module outside src/api imports Koa", () => {
    expect(offenders(all.filter((f) => !f.startsWith(src("api") + "/")), [KOA])).toEqual([]);
  });

  it("the checks find what they look for", () => {
    const lines = [
      'await prisma.$queryRawUnsafe("x")',
      "const q = sql`SELECT e.id FROM events e`;",
      '"INSERT INTO events (id) VALUES ($1)"',
      "`UPDATE deliveries d SET status = 'pending'`",
      "`DELETE FROM deliveries WHERE x`",
      "`CREATE SCHEMA x`",
    ];
    for (const line of lines) expect(SQL.some((p) => p.test(code(line)[0]!))).toBe(true);
    expect(SQL.some((p) => p.test(code("// SELECT 1 in a comment")[0]!))).toBe(false);
    expect(SQL.some((p) => p.test("select the oldest waiter; update the set"))).toBe(false);
    expect(UNSAFE.test(code("await tx.$executeRawUnsafe(text, id)")[0]!)).toBe(true);
    expect(UNSAFE.test(code("await queryRows(tx, \"x\", sql`SELECT 1`, {})")[0]!)).toBe(false);
    expect(UNSAFE.test(code("await prisma.$queryRaw(sql`SELECT 1`)")[0]!)).toBe(false);
    expect(KOA.test('import type { Context } from "koa";')).toBe(true);
    expect(KOA.test('import Router from "@koa/router";')).toBe(true);
    expect(KOA.test('import type { Context } from "./koa-free";')).toBe(false);
  });
});
