import { createHash } from "node:crypto";
import { Prisma, type PrismaClient } from "../generated/prisma/client";

/**
 * Named statements: every statement of the store is a function with typed parameters, its text
 * composed with `Prisma.sql` (values become bind parameters, fragments nest with their own
 * parameters), and the rows it answers checked against a declared shape. A row that does not match
 * is a DatabaseShapeError naming the statement, not a value of the wrong type further on.
 */

/** What runs a statement: the client or a transaction's client. */
export type Queryable = Pick<PrismaClient, "$queryRaw" | "$executeRaw">;

export { Prisma };
export const sql = Prisma.sql;
/** A constant fragment of statement text (never a value: values go through `sql`). */
export const fragment = Prisma.raw;
export const join = Prisma.join;
export const empty = Prisma.empty;
export type Sql = Prisma.Sql;

/**
 * Texts of the hot statements of constant text (the worker's insert) → the name they are
 * prepared under on Postgres: each connection parses such a statement once and Postgres may keep
 * its plan, where an unnamed statement is parsed, analysed and planned on every execution (the
 * insert's Postgres CPU per event fell by about a third). Only statements whose plan does not hang
 * on their values belong here: after five executions Postgres may keep one generic plan for all.
 * Bounded: a marked text varies only with its fragments, so past MAX_PREPARED texts something is
 * composing texts from values, and the rest run unnamed.
 */
const preparedNames = new Map<string, string>();
const MAX_PREPARED = 64;

/** `text`, marked to run as a named prepared statement on Postgres (see preparedNames); `label` prefixes its name. */
export function prepared(label: string, text: Sql): Sql {
  const body = text.text; // as Postgres gets it ($n placeholders; .sql has ?)
  if (!preparedNames.has(body) && preparedNames.size < MAX_PREPARED) {
    preparedNames.set(body, `${label}_${createHash("sha256").update(body).digest("hex").slice(0, 16)}`);
  }
  return text;
}

/** The prepared-statement name of a statement text marked by `prepared`, else undefined (unnamed). */
export function preparedName(text: string): string | undefined {
  return preparedNames.get(text);
}

/** A column's kind: "int" accepts a number or a bigint and answers a number; "?" suffix allows null. */
type ColumnKind = "string" | "int" | "number" | "boolean" | "date" | "strings" | "json";
export type Column = ColumnKind | `${ColumnKind}?`;
export type RowShape = Readonly<Record<string, Column>>;

type KindType<K extends ColumnKind> = K extends "string"
  ? string
  : K extends "int" | "number"
    ? number
    : K extends "boolean"
      ? boolean
      : K extends "date"
        ? Date
        : K extends "strings"
          ? string[]
          : unknown;
type ColumnType<C extends Column> = C extends `${infer K extends ColumnKind}?` ? KindType<K> | null : C extends ColumnKind ? KindType<C> : never;
/** The row type a shape declares. */
export type RowOf<S extends RowShape> = { -readonly [K in keyof S]: ColumnType<S[K]> };

/** A row that does not have the shape its statement declares. */
export class DatabaseShapeError extends Error {
  constructor(statement: string, detail: string) {
    super(`statement ${statement}: ${detail}`);
    this.name = "DatabaseShapeError";
  }
}

function checkValue(statement: string, column: string, kind: Column, value: unknown): unknown {
  const optional = kind.endsWith("?");
  if (value === null || value === undefined) {
    if (optional) return null;
    throw new DatabaseShapeError(statement, `column ${column} is null`);
  }
  const base = (optional ? kind.slice(0, -1) : kind) as ColumnKind;
  switch (base) {
    case "string":
      if (typeof value === "string") return value;
      break;
    case "int":
      if (typeof value === "number" && Number.isInteger(value)) return value;
      if (typeof value === "bigint") return Number(value);
      break;
    case "number":
      if (typeof value === "number") return value;
      if (typeof value === "bigint") return Number(value);
      break;
    case "boolean":
      if (typeof value === "boolean") return value;
      break;
    case "date":
      if (value instanceof Date) return value;
      break;
    case "strings":
      if (Array.isArray(value) && value.every((x) => typeof x === "string")) return value;
      break;
    case "json":
      return value;
  }
  throw new DatabaseShapeError(statement, `column ${column} is ${typeof value}, expected ${kind}`);
}

/** Checks rows against a shape; answers them typed (ints as numbers). */
export function checkRows<S extends RowShape>(statement: string, rows: unknown, shape: S): RowOf<S>[] {
  if (!Array.isArray(rows)) throw new DatabaseShapeError(statement, "did not answer rows");
  const columns = Object.entries(shape);
  return rows.map((row: unknown) => {
    if (row === null || typeof row !== "object") throw new DatabaseShapeError(statement, "answered a row that is not an object");
    const r = row as Record<string, unknown>;
    for (const [column, kind] of columns) r[column] = checkValue(statement, column, kind, r[column]);
    return r as RowOf<S>;
  });
}

/** Runs a statement that answers rows, checked against `shape`. */
export async function queryRows<S extends RowShape>(db: Queryable, statement: string, text: Sql, shape: S): Promise<RowOf<S>[]> {
  return checkRows(statement, await db.$queryRaw<unknown[]>(text), shape);
}

/** Runs a statement for its effect; answers the rows it touched. */
export async function execute(db: Queryable, text: Sql): Promise<number> {
  return db.$executeRaw(text);
}
