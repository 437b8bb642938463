import Router from "@koa/router";
import type { ApiDeps } from "../deps";

const CHECK_TIMEOUT_MS = 1500;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs named readiness checks in parallel, each bounded by a short timeout. */
export async function runChecks(checks: Record<string, () => Promise<unknown>>): Promise<{ ok: boolean; checks: Record<string, { ok: boolean; error?: string }> }> {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((n) => withTimeout(checks[n]!(), CHECK_TIMEOUT_MS)));
  const out: Record<string, { ok: boolean; error?: string }> = {};
  results.forEach((r, i) => {
    out[names[i]!] = r.status === "fulfilled" ? { ok: true } : { ok: false, error: r.reason instanceof Error ? r.reason.message : "failed" };
  });
  return { ok: results.every((r) => r.status === "fulfilled"), checks: out };
}

/** GET /healthz (liveness: the process answers) and GET /readyz (each dependency the API needs). */
export function healthRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });
  router.get("/readyz", async (ctx) => {
    const checks: Record<string, () => Promise<unknown>> = {
      postgres: () => deps.db.ping(),
      sqs: () => deps.queue.depth(),
    };
    const redis = deps.redis;
    if (redis) checks.redis = () => redis.ping();
    const result = await runChecks(checks);
    const failing = Object.entries(result.checks).filter(([, c]) => !c.ok).map(([n]) => n);
    if (result.ok) {
      ctx.body = { status: "ready", checks: result.checks };
    } else {
      ctx.status = 503;
      ctx.set("Retry-After", "5");
      ctx.body = {
        error: {
          code: "not_ready",
          message: `not ready: ${failing.join(", ")} unavailable`,
          details: failing.map((n) => ({ dependency: n, message: result.checks[n]!.error ?? "failed" })),
        },
      };
    }
  });
  return router;
}
