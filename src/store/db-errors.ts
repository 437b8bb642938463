/**
 * The one classification of database errors, at the store boundary. Callers ask what an error
 * means, never match its text themselves:
 *   - "unavailable": Postgres did not answer in time or could not be reached (down, frozen, past a
 *     statement deadline, pool exhausted) — the dependency's failure, worth retrying later;
 *   - "data": Postgres refused the data itself (SQLSTATE class 22 data exception or 23 integrity
 *     violation) — retrying cannot fix it;
 *   - "other": anything else (a bug, a missing table).
 */
import { errorMessage } from "../errors";

export type DatabaseErrorKind = "unavailable" | "data" | "other";

/** Prisma codes of an unreachable, timed-out or closed database (P1001 reach, P1002/P1008 timeouts, P1017 closed, P2024 pool timeout). */
const UNAVAILABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** What @prisma/adapter-pg calls a socket that failed (the `kind` of a driver adapter error). */
const UNAVAILABLE_KINDS = new Set(["ConnectionClosed", "SocketTimeout", "DatabaseNotReachable", "TooManyConnections"]);
/**
 * What pg, pg-pool, Postgres and Prisma say when a deadline passes or the connection goes, also
 * inside a raw query's P2010 ("Raw query failed. … Message: `Server has closed the connection.`")
 * and a transaction that found no connection in time (P2028).
 */
const UNAVAILABLE_MESSAGE =
  /Query read timeout|timeout exceeded when trying to connect|Connection terminated|canceling statement due to statement timeout|connection (?:is )?(?:closed|timeout)|has closed the connection|not queryable|Unable to start a transaction in the given time|expired transaction|Transaction already closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|socket has been ended|Can't reach database server|57014/i;
/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation). */
const DATA_SQLSTATE = /^(22|23)[0-9A-Z]{3}$/;

/** What a database error means to its caller. */
export function classifyDatabaseError(err: unknown): DatabaseErrorKind {
  if (isDatabaseUnavailable(err)) return "unavailable";
  if (isDataError(err)) return "data";
  return "other";
}

/** True for errors (or their causes) that mean Postgres did not answer in time or could not be reached. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const o = e as { name?: unknown; code?: unknown; kind?: unknown; message?: unknown };
    if (o.name === "PrismaClientInitializationError") return true;
    if (typeof o.code === "string" && UNAVAILABLE_CODES.has(o.code)) return true;
    if (typeof o.kind === "string" && UNAVAILABLE_KINDS.has(o.kind)) return true;
    if (typeof o.message === "string" && UNAVAILABLE_MESSAGE.test(o.message)) return true;
  }
  return false;
}

/**
 * True for errors about the data (SQLSTATE class 22 or 23), found in the error's code, its Prisma
 * meta, its driver adapter error or its causes; everything else (connection loss, timeouts) is worth retrying.
 */
export function isDataError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur && typeof cur === "object" && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: unknown }; cause?: unknown; originalCode?: unknown };
    for (const code of [e.code, e.meta?.code, e.originalCode]) {
      if (typeof code === "string" && DATA_SQLSTATE.test(code)) return true;
    }
    cur = e.cause ?? e.meta?.driverAdapterError;
  }
  const text = errorMessage(err);
  return /\b(22|23)[0-9A-Z]{3}\b/.test(text) || /out of range|invalid input syntax|violates/i.test(text);
}
