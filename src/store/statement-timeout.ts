import { errorMessage } from "../errors";
/**
 * A statement Postgres cancelled at its statement_timeout (SQLSTATE 57014). Unlike a lost
 * connection it says something about the statement: retrying it as it is would time out again,
 * so the ingest worker splits the work instead (src/ingest/group-commit.ts).
 */
export class StatementTimeoutError extends Error {
  constructor(cause: unknown) {
    super(`statement timeout: ${errorMessage(cause)}`, { cause });
  }
}

/** True for an error (or one it wraps) that is Postgres's query_canceled for a statement timeout. */
export function isStatementTimeout(err: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur && typeof cur === "object" && !seen.has(cur)) {
    seen.add(cur);
    if (cur instanceof StatementTimeoutError) return true;
    const e = cur as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: unknown }; originalCode?: unknown; cause?: unknown; message?: unknown };
    if ([e.code, e.meta?.code, e.originalCode].includes("57014")) return true;
    if (typeof e.message === "string" && /canceling statement due to statement timeout/i.test(e.message)) return true;
    cur = e.cause ?? e.meta?.driverAdapterError;
  }
  return false;
}
