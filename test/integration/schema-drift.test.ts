import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getDMMF } from "@prisma/internals";
import { Client } from "pg";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { pgExecutor } from "../../src/store/migrate/pg-executor";
import { Pool } from "pg";
import { createTestSchema, onlyOn } from "../helpers/harness";
import { TEST_DATABASE_URL } from "../helpers/env";

/**
 * Fails when prisma/schema.prisma and the database built by prisma/migrations disagree:
 * tables, columns (type, nullability, default presence), enums and indexes (columns, uniqueness
 * and partial-index predicates). `prisma migrate diff` needs the schema engine, which this check
 * does not: it reads the schema through Prisma's own parser (getDMMF) and the database through
 * the catalog.
 */
const SCALAR_TO_PG: Record<string, string> = {
  String: "text",
  Int: "integer",
  BigInt: "bigint",
  Boolean: "boolean",
  Json: "jsonb",
  Float: "double precision",
};

function expectedPgType(field: { type: string; kind: string; nativeType?: unknown }, enums: Map<string, string>): string {
  const native = field.nativeType as [string, string[]] | null | undefined;
  if (native) {
    const [name] = native;
    if (name === "Timestamptz") return "timestamp with time zone";
    if (name === "Uuid") return "uuid";
    if (name === "Text") return "text";
  }
  if (field.kind === "enum") return enums.get(field.type) ?? field.type;
  if (field.type === "DateTime") return "timestamp without time zone";
  return SCALAR_TO_PG[field.type] ?? field.type;
}

// Both stores run the same migration SQL; this reads the result through the Postgres server's catalog.
onlyOn("postgres", "reads the catalog of the Postgres server over node-postgres").describe("Prisma schema vs migrated database", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let client: Client;

  beforeAll(async () => {
    schema = await createTestSchema();
    const pool = new Pool({ connectionString: TEST_DATABASE_URL, options: `-c search_path="${schema.schema}"`, max: 2 });
    await applyMigrations(pgExecutor(pool), loadMigrations());
    await pool.end();
    client = new Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await schema.drop();
  });

  test("every model, field, enum and index matches", async () => {
    const text = readFileSync(join(__dirname, "..", "..", "prisma", "schema.prisma"), "utf8");
    const dmmf = await getDMMF({ datamodel: text });
    const enums = new Map(dmmf.datamodel.enums.map((e) => [e.name, e.dbName ?? e.name]));

    const tables = await client.query<{ table_name: string }>(
      // Partitions of events and deliveries are not models: they are their parents' storage.
      `SELECT table_name FROM information_schema.tables t WHERE table_schema = $1 AND table_name <> '_prisma_migrations'
         AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = t.table_schema AND c.relname = t.table_name AND c.relispartition)`,
      [schema.schema],
    );
    expect(tables.rows.map((r) => r.table_name).sort()).toEqual(dmmf.datamodel.models.map((m) => m.dbName ?? m.name).sort());

    for (const e of dmmf.datamodel.enums) {
      const labels = await client.query<{ label: string }>(
        `SELECT e.enumlabel AS label FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = $1 AND t.typname = $2 ORDER BY e.enumsortorder`,
        [schema.schema, e.dbName ?? e.name],
      );
      expect({ enum: e.name, values: labels.rows.map((r) => r.label) }).toEqual({ enum: e.name, values: e.values.map((v) => v.dbName ?? v.name) });
    }

    for (const model of dmmf.datamodel.models) {
      const table = model.dbName ?? model.name;
      const cols = await client.query<{ column_name: string; data_type: string; udt_name: string; is_nullable: string; column_default: string | null }>(
        `SELECT column_name, data_type, udt_name, is_nullable, column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
        [schema.schema, table],
      );
      const actual = new Map(cols.rows.map((c) => [c.column_name, c]));
      const scalarFields = model.fields.filter((f) => f.kind === "scalar" || f.kind === "enum");
      expect({ table, columns: [...actual.keys()].sort() }).toEqual({ table, columns: scalarFields.map((f) => f.dbName ?? f.name).sort() });
      for (const f of scalarFields) {
        const col = actual.get(f.dbName ?? f.name)!;
        const want = expectedPgType(f, enums);
        const got = f.isList
          ? `${col.udt_name.replace(/^_/, "")}[]`
          : col.data_type === "USER-DEFINED"
            ? col.udt_name
            : col.data_type;
        const wantShown = f.isList ? `${want === "text" ? "text" : want}[]` : want;
        // Prisma creates scalar lists as nullable columns; everything else follows `?`.
        const wantNullable = f.isList ? "YES" : f.isRequired ? "NO" : "YES";
        expect({ column: `${table}.${col.column_name}`, type: got, nullable: col.is_nullable, hasDefault: col.column_default !== null }).toEqual({
          column: `${table}.${col.column_name}`,
          type: wantShown,
          nullable: wantNullable,
          hasDefault: f.hasDefaultValue,
        });
      }
    }

    // Indexes: names, columns, uniqueness and partial predicates.
    const idx = await client.query<{ indexname: string; tablename: string; indexdef: string }>(
      `SELECT indexname, tablename, indexdef FROM pg_indexes i WHERE schemaname = $1 AND tablename <> '_prisma_migrations'
         AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = i.schemaname AND c.relname = i.tablename AND c.relispartition)`,
      [schema.schema],
    );
    const dbIndexes = new Map(idx.rows.map((r) => [r.indexname, r]));
    const expected = new Set<string>();
    const fieldDb = (model: string, field: string) => {
      const m = dmmf.datamodel.models.find((x) => x.name === model)!;
      const f = m.fields.find((x) => x.name === field)!;
      return f.dbName ?? f.name;
    };
    for (const index of dmmf.datamodel.indexes) {
      const model = dmmf.datamodel.models.find((m) => m.name === index.model)!;
      const table = model.dbName ?? model.name;
      const name = index.type === "id" ? `${table}_pkey` : index.dbName!;
      expected.add(name);
      const row = dbIndexes.get(name);
      expect({ index: name, exists: row !== undefined }).toEqual({ index: name, exists: true });
      const columns = index.fields.map((f) => fieldDb(index.model, f.name));
      const colList = /\((.*?)\)/.exec(row!.indexdef)![1]!.split(",").map((s) => s.trim().replace(/"/g, ""));
      expect({ index: name, columns: colList }).toEqual({ index: name, columns });
      const unique = index.type === "unique" || index.type === "id";
      expect({ index: name, unique: row!.indexdef.startsWith("CREATE UNIQUE") }).toEqual({ index: name, unique });
      // Partial predicate, from the schema's raw("…") text; DMMF does not carry it.
      const schemaLine = text.split("\n").find((l) => l.includes(`map: "${name}"`));
      const where = schemaLine ? /where: raw\("(.*)"\)/.exec(schemaLine)?.[1] : undefined;
      const dbWhere = / WHERE (.*)$/.exec(row!.indexdef)?.[1];
      expect({ index: name, partial: dbWhere !== undefined }).toEqual({ index: name, partial: where !== undefined });
      if (where && dbWhere) {
        const cols = /^\s*(\w+)\s/.exec(where)?.[1] ?? "";
        expect({ index: name, predicateColumn: dbWhere.includes(cols) }).toEqual({ index: name, predicateColumn: true });
      }
    }
    expect([...dbIndexes.keys()].sort()).toEqual([...expected].sort());
  });
});
