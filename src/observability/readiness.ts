import { errorBody } from "../errors";
import { withTimeout } from "../deadline";

/** Longest a single readiness check may take, ms: a probe must answer well inside its own timeout. */
export const CHECK_TIMEOUT_MS = 1500;

/** A named dependency check: resolves when the dependency answers, rejects otherwise. */
export type ReadinessChecks = Record<string, () => Promise<unknown>>;

/** The outcome of one dependency check. */
export interface CheckResult {
  readonly ok: boolean;
  readonly error?: string;
}

/** The outcome of all checks of a readiness probe. */
export interface ReadinessResult {
  readonly ok: boolean;
  readonly checks: Record<string, CheckResult>;
  /** Names of the dependencies that failed, in check order. */
  readonly failing: string[];
}

/** Runs named readiness checks in parallel, each bounded by `timeoutMs`. A check that throws synchronously fails too. */
export async function runChecks(checks: ReadinessChecks, timeoutMs = CHECK_TIMEOUT_MS): Promise<ReadinessResult> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((n) => withTimeout(Promise.resolve().then(checks[n]!), timeoutMs)));
  const out: Record<string, CheckResult> = {};
  const failing: string[] = [];
  results.forEach((r, i) => {
    const name = names[i]!;
    if (r.status === "fulfilled") {
      out[name] = { ok: true };
    } else {
      failing.push(name);
      out[name] = { ok: false, error: r.reason instanceof Error ? r.reason.message : "failed" };
    }
  });
  return { ok: failing.length === 0, checks: out, failing };
}

/** Seconds a client or orchestrator should wait before asking an unready process again. */
export const NOT_READY_RETRY_AFTER_SECONDS = 5;

/**
 * The JSON body of a readiness answer: `{status:"ready", checks}` when every check passed,
 * otherwise the shared error shape naming each failing dependency (served with 503).
 */
export function readinessBody(result: ReadinessResult): unknown {
  if (result.ok) return { status: "ready", checks: result.checks };
  return errorBody(
    "not_ready",
    `not ready: ${result.failing.join(", ")} unavailable`,
    result.failing.map((n) => ({ dependency: n, message: result.checks[n]?.error ?? "failed" })),
  );
}
