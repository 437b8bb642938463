import { sqlTokens } from "./sql-lexer";
import {
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  RollbackTransactionCommand,
  type RDSDataClient,
  type SqlParameter,
} from "@aws-sdk/client-rds-data";
import type { SqlExecutor } from "./migrations";

/** Which Aurora cluster, credentials secret and database the Data API calls address. */
export interface DataApiTarget {
  /** ARN of the Aurora cluster (its HTTP endpoint must be enabled). */
  readonly resourceArn: string;
  /** ARN of the Secrets Manager secret holding the database credentials. */
  readonly secretArn: string;
  /** Database name inside the cluster. */
  readonly database: string;
}

/**
 * A SqlExecutor over the RDS Data API (Aurora PostgreSQL with `enable_http_endpoint`), so
 * migrations can run from a laptop or CI without network access to the VPC. Each query is one
 * ExecuteStatement call; `transaction` wraps the calls in Begin/Commit/RollbackTransaction.
 */
export function dataApiExecutor(client: RDSDataClient, target: DataApiTarget): SqlExecutor {
  const { resourceArn, secretArn, database } = target;

  async function execute<R>(sql: string, params: readonly unknown[], transactionId?: string): Promise<R[]> {
    const hasParams = params.length > 0;
    const out = await client.send(
      new ExecuteStatementCommand({
        resourceArn,
        secretArn,
        database,
        // Statements without parameters go through untouched: DDL with dollar-quoted bodies
        // must reach Postgres byte for byte.
        sql: hasParams ? toNamedParameters(sql) : sql,
        parameters: hasParams ? params.map((v, i) => toSqlParameter(`p${i + 1}`, v)) : undefined,
        transactionId,
        formatRecordsAs: "JSON",
      }),
    );
    // formattedRecords is absent for statements that return no result set (DDL, INSERT without RETURNING).
    if (out.formattedRecords === undefined || out.formattedRecords === "") return [];
    const rows: unknown = JSON.parse(out.formattedRecords);
    if (!Array.isArray(rows)) throw new Error("Data API returned formattedRecords that is not a JSON array");
    return rows as R[];
  }

  return {
    query<R>(sql: string, params: readonly unknown[] = []) {
      return execute<R>(sql, params);
    },
    async transaction<T>(fn: (tx: Pick<SqlExecutor, "query">) => Promise<T>): Promise<T> {
      const begun = await client.send(new BeginTransactionCommand({ resourceArn, secretArn, database }));
      const transactionId = begun.transactionId;
      if (!transactionId) throw new Error("Data API BeginTransaction returned no transactionId");
      let result: T;
      try {
        result = await fn({
          query<R>(sql: string, params: readonly unknown[] = []) {
            return execute<R>(sql, params, transactionId);
          },
        });
      } catch (err) {
        // The original error matters more than a failed rollback; an abandoned transaction
        // is rolled back by the Data API after its timeout anyway.
        await client
          .send(new RollbackTransactionCommand({ resourceArn, secretArn, transactionId }))
          .catch(() => undefined);
        throw err;
      }
      await client.send(new CommitTransactionCommand({ resourceArn, secretArn, transactionId }));
      return result;
    },
  };
}

/**
 * Rewrites positional parameters ($1, $2 …) into Data API named parameters (:p1, :p2 …),
 * leaving string literals ('…', E'…'), quoted identifiers ("…"), dollar-quoted bodies
 * ($tag$…$tag$) and comments untouched (sql-lexer.ts bounds them).
 */
export function toNamedParameters(sql: string): string {
  let out = "";
  for (const token of sqlTokens(sql)) out += token.kind === "parameter" ? `:p${token.text.slice(1)}` : token.text;
  return out;
}

export function toSqlParameter(name: string, value: unknown): SqlParameter {
  if (value === null || value === undefined) return { name, value: { isNull: true } };
  if (typeof value === "string") return { name, value: { stringValue: value } };
  if (typeof value === "boolean") return { name, value: { booleanValue: value } };
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`parameter ${name}: ${value} cannot be sent to Postgres`);
    return Number.isSafeInteger(value)
      ? { name, value: { longValue: value } }
      : { name, value: { doubleValue: value } };
  }
  if (typeof value === "bigint") {
    // longValue is a JS number; larger values keep their precision as a DECIMAL string.
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? { name, value: { longValue: Number(value) } }
      : { name, value: { stringValue: value.toString() }, typeHint: "DECIMAL" };
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError(`parameter ${name}: invalid Date`);
    // The Data API accepts "YYYY-MM-DD HH:MM:SS[.FFF]" and reads it as UTC.
    const stamp = value.toISOString().replace("T", " ").replace("Z", "");
    return { name, value: { stringValue: stamp }, typeHint: "TIMESTAMP" };
  }
  if (value instanceof Uint8Array) return { name, value: { blobValue: value } };
  if (typeof value === "object") {
    return { name, value: { stringValue: JSON.stringify(value) }, typeHint: "JSON" };
  }
  throw new TypeError(`parameter ${name}: unsupported type ${typeof value}`);
}
