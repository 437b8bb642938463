import {
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RDSDataClient,
  RollbackTransactionCommand,
  type ExecuteStatementCommandInput,
} from "@aws-sdk/client-rds-data";
import { mockClient } from "aws-sdk-client-mock";
import {
  applyMigrations,
  CREATE_MIGRATIONS_TABLE,
  loadMigrations,
  MIGRATION_LOCK_KEY,
  type Migration,
  type SqlExecutor,
} from "../../src/store/migrate/migrations";
import { dataApiExecutor, toNamedParameters, toSqlParameter } from "../../src/store/migrate/data-api-executor";

const target = {
  resourceArn: "arn:aws:rds:eu-west-1:123456789012:cluster:triggers",
  secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:triggers-db-AbCdEf",
  database: "triggers",
};

const SELECT_FAILED = `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NULL AND rolled_back_at IS NULL`;
const SELECT_APPLIED = `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE rolled_back_at IS NULL AND finished_at IS NOT NULL`;

type Rows = Record<string, unknown>[];

/** Canned answers by statement: only the two bookkeeping SELECTs return rows. */
function cannedRows(sql: string, applied: Rows): Rows {
  if (sql === SELECT_APPLIED) return applied;
  return [];
}

interface Recorded {
  sql: string;
  params: readonly unknown[];
  inTx: boolean;
}

/** The direct runner's view: a SqlExecutor that records every statement, like pg/PGlite would receive it. */
function recordingExecutor(applied: Rows = []): { db: SqlExecutor; calls: Recorded[] } {
  const calls: Recorded[] = [];
  const run = (inTx: boolean) =>
    async function query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
      calls.push({ sql, params, inTx });
      return cannedRows(sql, applied) as R[];
    };
  return {
    calls,
    db: { query: run(false), transaction: (fn) => fn({ query: run(true) }) },
  };
}

const rds = mockClient(RDSDataClient);

function executeCalls(): ExecuteStatementCommandInput[] {
  return rds.commandCalls(ExecuteStatementCommand).map((c) => c.args[0].input);
}

function mockDataApi(applied: Rows = [], fail?: (sql: string) => boolean): void {
  rds.on(BeginTransactionCommand).resolves({ transactionId: "tx-42" });
  rds.on(CommitTransactionCommand).resolves({ transactionStatus: "Transaction Committed" });
  rds.on(RollbackTransactionCommand).resolves({ transactionStatus: "Rollback Complete" });
  rds.on(ExecuteStatementCommand).callsFake((input: ExecuteStatementCommandInput) => {
    const sql = input.sql ?? "";
    if (fail?.(sql)) throw new Error("ERROR: syntax error at or near \"TABLE\"");
    // Like the real service: formattedRecords only for statements returning a result set.
    if (sql.startsWith("SELECT migration_name")) {
      return { formattedRecords: JSON.stringify(cannedRows(sql, applied)) };
    }
    if (sql.startsWith("SELECT pg_advisory")) return { formattedRecords: "[{\"pg_advisory_xact_lock\":\"\"}]" };
    return { numberOfRecordsUpdated: 0 };
  });
}

let migrations: Migration[];

beforeAll(() => {
  migrations = loadMigrations();
  expect(migrations.length).toBeGreaterThan(0);
});

beforeEach(() => rds.reset());

describe("dataApiExecutor with applyMigrations", () => {
  test("sends exactly the direct runner's statements, in one Data API transaction", async () => {
    const direct = recordingExecutor();
    const directResult = await applyMigrations(direct.db, migrations);

    mockDataApi();
    const client = new RDSDataClient({ region: "eu-west-1" });
    const result = await applyMigrations(dataApiExecutor(client, target), migrations);

    expect(result).toEqual(directResult);
    expect(result.applied).toEqual(migrations.map((m) => m.name));

    const calls = executeCalls();
    // Same statements, in the same order; parameterised ones differ only by $n -> :pn.
    expect(calls.map((c) => c.sql)).toEqual(
      direct.calls.map((c) => (c.params.length > 0 ? toNamedParameters(c.sql) : c.sql)),
    );

    // Spelled out, so a change in the runner is noticed here too.
    const expected: string[] = [CREATE_MIGRATIONS_TABLE, `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, SELECT_FAILED, SELECT_APPLIED];
    for (const m of migrations) {
      expected.push(
        `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES (:p1, :p2, :p3, now(), 0)`,
        ...m.statements,
        `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = :p1`,
      );
    }
    expect(calls.map((c) => c.sql)).toEqual(expected);

    // Every call addresses the target and asks for JSON records.
    for (const c of calls) {
      expect(c).toMatchObject({ ...target, formatRecordsAs: "JSON" });
    }
    // CREATE TABLE runs outside the transaction (as in the direct runner); everything else inside it.
    expect(calls[0]!.transactionId).toBeUndefined();
    expect(direct.calls[0]!.inTx).toBe(false);
    expect(calls.slice(1).every((c) => c.transactionId === "tx-42")).toBe(true);
    expect(direct.calls.slice(1).every((c) => c.inTx)).toBe(true);

    // Bookkeeping parameters: typed values with the right checksum and name; UPDATE uses the INSERT's id.
    const inserts = calls.filter((c) => c.sql!.startsWith(`INSERT INTO "_prisma_migrations"`));
    const updates = calls.filter((c) => c.sql!.startsWith(`UPDATE "_prisma_migrations"`));
    expect(inserts).toHaveLength(migrations.length);
    migrations.forEach((m, i) => {
      const params = inserts[i]!.parameters!;
      expect(params.map((p) => p.name)).toEqual(["p1", "p2", "p3"]);
      expect(params[0]!.value!.stringValue).toMatch(/^[0-9a-f-]{36}$/);
      expect(params[1]).toEqual({ name: "p2", value: { stringValue: m.checksum } });
      expect(params[2]).toEqual({ name: "p3", value: { stringValue: m.name } });
      expect(updates[i]!.parameters).toEqual([{ name: "p1", value: { stringValue: params[0]!.value!.stringValue } }]);
    });
    // Statements without parameters carry none.
    expect(calls.filter((c) => !c.sql!.includes(":p")).every((c) => c.parameters === undefined)).toBe(true);

    expect(rds.commandCalls(BeginTransactionCommand)).toHaveLength(1);
    expect(rds.commandCalls(BeginTransactionCommand)[0]!.args[0].input).toEqual(target);
    expect(rds.commandCalls(CommitTransactionCommand)).toHaveLength(1);
    expect(rds.commandCalls(CommitTransactionCommand)[0]!.args[0].input).toEqual({
      resourceArn: target.resourceArn,
      secretArn: target.secretArn,
      transactionId: "tx-42",
    });
    expect(rds.commandCalls(RollbackTransactionCommand)).toHaveLength(0);
  });

  test("a second run with every migration recorded sends no migration statement", async () => {
    const applied = migrations.map((m) => ({ migration_name: m.name, checksum: m.checksum }));
    const direct = recordingExecutor(applied);
    await applyMigrations(direct.db, migrations);

    mockDataApi(applied);
    const result = await applyMigrations(dataApiExecutor(new RDSDataClient({ region: "eu-west-1" }), target), migrations);

    expect(result).toEqual({ applied: [], alreadyApplied: migrations.map((m) => m.name) });
    const sqls = executeCalls().map((c) => c.sql);
    expect(sqls).toEqual([CREATE_MIGRATIONS_TABLE, `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, SELECT_FAILED, SELECT_APPLIED]);
    expect(sqls).toEqual(direct.calls.map((c) => c.sql));
    expect(rds.commandCalls(CommitTransactionCommand)).toHaveLength(1);
  });

  test("a failing statement rolls the transaction back and rethrows", async () => {
    const failing = migrations[0]!.statements[0]!;
    mockDataApi([], (sql) => sql === failing);

    await expect(
      applyMigrations(dataApiExecutor(new RDSDataClient({ region: "eu-west-1" }), target), migrations),
    ).rejects.toThrow(/syntax error/);

    expect(rds.commandCalls(RollbackTransactionCommand)).toHaveLength(1);
    expect(rds.commandCalls(RollbackTransactionCommand)[0]!.args[0].input).toEqual({
      resourceArn: target.resourceArn,
      secretArn: target.secretArn,
      transactionId: "tx-42",
    });
    expect(rds.commandCalls(CommitTransactionCommand)).toHaveLength(0);
    // Nothing after the failing statement was sent.
    expect(executeCalls().at(-1)!.sql).toBe(failing);
  });

  test("a checksum mismatch throws, rolls back and applies nothing", async () => {
    const applied = migrations.map((m) => ({ migration_name: m.name, checksum: "0".repeat(64) }));
    mockDataApi(applied);

    await expect(
      applyMigrations(dataApiExecutor(new RDSDataClient({ region: "eu-west-1" }), target), migrations),
    ).rejects.toThrow(/checksum mismatch/);

    expect(rds.commandCalls(RollbackTransactionCommand)).toHaveLength(1);
    expect(rds.commandCalls(CommitTransactionCommand)).toHaveLength(0);
    expect(executeCalls().some((c) => c.sql!.startsWith("INSERT"))).toBe(false);
  });

  test("the original error survives a failed rollback", async () => {
    mockDataApi([], (sql) => sql.startsWith("SELECT pg_advisory"));
    rds.on(RollbackTransactionCommand).rejects(new Error("transaction already gone"));

    await expect(
      applyMigrations(dataApiExecutor(new RDSDataClient({ region: "eu-west-1" }), target), migrations),
    ).rejects.toThrow(/syntax error/);
  });

  test("rows come back as objects parsed from formattedRecords; statements without a result set return []", async () => {
    rds.on(ExecuteStatementCommand).callsFake((input: ExecuteStatementCommandInput) =>
      input.sql!.startsWith("SELECT")
        ? { formattedRecords: JSON.stringify([{ id: 1, name: "a" }, { id: 2, name: null }]) }
        : { numberOfRecordsUpdated: 3 },
    );
    const db = dataApiExecutor(new RDSDataClient({ region: "eu-west-1" }), target);
    await expect(db.query("SELECT id, name FROM t")).resolves.toEqual([
      { id: 1, name: "a" },
      { id: 2, name: null },
    ]);
    await expect(db.query("DELETE FROM t")).resolves.toEqual([]);
  });
});

describe("toNamedParameters", () => {
  test("rewrites $n outside quotes only", () => {
    expect(toNamedParameters("SELECT * FROM t WHERE a = $1 AND b = $2 OR c = $10")).toBe(
      "SELECT * FROM t WHERE a = :p1 AND b = :p2 OR c = :p10",
    );
    expect(toNamedParameters(`SELECT '$1', "$2", $3`)).toBe(`SELECT '$1', "$2", :p3`);
    expect(toNamedParameters(`SELECT 'it''s $1', $2`)).toBe(`SELECT 'it''s $1', :p2`);
    expect(toNamedParameters(`SELECT E'a\\'$1', $2`)).toBe(`SELECT E'a\\'$1', :p2`);
    expect(toNamedParameters("SELECT $$ $1 $$, $tag$ $2 $tag$, $3")).toBe("SELECT $$ $1 $$, $tag$ $2 $tag$, :p3");
    expect(toNamedParameters("SELECT $1 -- $2\n, /* $3 /* $4 */ $5 */ $6")).toBe(
      "SELECT :p1 -- $2\n, /* $3 /* $4 */ $5 */ :p6",
    );
    // $ inside an identifier is part of the name, not a parameter.
    expect(toNamedParameters("SELECT a$1 FROM t WHERE x = $1")).toBe("SELECT a$1 FROM t WHERE x = :p1");
    // Casts are kept as they are.
    expect(toNamedParameters("SELECT $1::int, ARRAY[]::text[]")).toBe("SELECT :p1::int, ARRAY[]::text[]");
  });
});

describe("toSqlParameter", () => {
  test("types each JavaScript value", () => {
    expect(toSqlParameter("p1", "x")).toEqual({ name: "p1", value: { stringValue: "x" } });
    expect(toSqlParameter("p1", 42)).toEqual({ name: "p1", value: { longValue: 42 } });
    expect(toSqlParameter("p1", 1.5)).toEqual({ name: "p1", value: { doubleValue: 1.5 } });
    expect(toSqlParameter("p1", true)).toEqual({ name: "p1", value: { booleanValue: true } });
    expect(toSqlParameter("p1", null)).toEqual({ name: "p1", value: { isNull: true } });
    expect(toSqlParameter("p1", undefined)).toEqual({ name: "p1", value: { isNull: true } });
    expect(toSqlParameter("p1", new Date("2026-11-27T10:20:30.456Z"))).toEqual({
      name: "p1",
      value: { stringValue: "2026-11-27 10:20:30.456" },
      typeHint: "TIMESTAMP",
    });
    expect(toSqlParameter("p1", 12n)).toEqual({ name: "p1", value: { longValue: 12 } });
    expect(toSqlParameter("p1", { a: 1 })).toEqual({ name: "p1", value: { stringValue: '{"a":1}' }, typeHint: "JSON" });
    expect(() => toSqlParameter("p1", Number.NaN)).toThrow(TypeError);
  });
});
