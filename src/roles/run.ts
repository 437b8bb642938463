import { ConfigError, loadConfig, requireServiceDependencies, type Config } from "../config";
import { buildContainer, type Container } from "../container";
import type { Logger } from "../observability/logger";
import { startApiRole } from "./api";
import type { RunningRole } from "./role";
import { startSchedulerRole } from "./scheduler";
import { startEmbedded } from "./start";
import { startWorkerRole } from "./worker";

/** The processes `triggers` runs: `start` (all in one, embedded defaults) and the three service roles. */
export type RoleName = "start" | "api" | "worker" | "scheduler";

const ROLES: Readonly<Record<RoleName, (c: Container) => Promise<RunningRole>>> = {
  start: startEmbedded,
  api: (c) => startApiRole(c),
  worker: startWorkerRole,
  scheduler: (c) => startSchedulerRole(c),
};

/** How long a role may take to stop after SIGTERM/SIGINT before it exits 1 anyway, ms. */
const SHUTDOWN_BOUND_MS = 10_000;

/**
 * Runs `stop` once on SIGTERM/SIGINT, then exits 0; a stop that fails or overruns the bound exits
 * 1. A second signal while stopping is ignored: the bound already guarantees the exit.
 */
export function stopOnSignal(logger: Logger | undefined, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    logger?.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      logger?.error({ boundMs: SHUTDOWN_BOUND_MS }, "shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_BOUND_MS);
    force.unref();
    stop()
      .then(() => {
        logger?.info({ ms: Date.now() - started }, "shutdown complete");
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger?.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => handler("SIGTERM"));
  process.on("SIGINT", () => handler("SIGINT"));
}

/**
 * Runs a role as this process: checks that a service role has its dependencies configured (it
 * never falls back to embedded ones), builds the container, starts the role, and on SIGTERM/SIGINT
 * stops the role and then the container's clients.
 */
export async function runRole(config: Config, role: RoleName): Promise<void> {
  if (role !== "start") requireServiceDependencies(config, role);
  const c = await buildContainer(config);
  const running = await ROLES[role](c);
  stopOnSignal(c.logger, async () => {
    await running.close();
    await c.close();
  });
}

/**
 * A role as a process's entry point (workers/*.ts), configured from the environment: a bad
 * configuration exits 2, a failed start 1, both with the reason on stderr.
 */
export function runRoleProcess(role: RoleName): void {
  Promise.resolve()
    .then(() => runRole(loadConfig(), role))
    .catch((err: unknown) => {
      process.stderr.write(`triggers ${role}: ${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    });
}
