import type { Container } from "../container";
import { startApi } from "../api/server";
import { applyMigrations, loadMigrations } from "../store/migrate/migrations";
import { apiCoalescers, buildApiDeps } from "./api";
import { drainAll } from "../coalescer";
import { ensureDevKey } from "./dev-key";
import { startQueueDepthPoller } from "./observability";
import type { RunningRole } from "./role";
import { startScheduler } from "./scheduler";
import { ensurePartitionsAtStart, startIngestWorker } from "./worker";

/** Applies the migrations the database lacks, logging each. */
async function migrate(c: Container): Promise<void> {
  const result = await applyMigrations(c.db.migrator, loadMigrations(), (line) => c.logger.info(line));
  c.logger.info({ applied: result.applied.length, alreadyApplied: result.alreadyApplied.length }, "database is up to date");
}

/**
 * `triggers start`, the all-in-one development process: migrates the database, then runs the
 * ingest worker, the scheduler and the API (it answers /metrics, /healthz and /readyz itself) in
 * one process, and prints where it listens with a development API key. close() stops taking
 * requests first (in-flight ones finish and their sends complete), then drains the worker's
 * batches in hand, then the scheduler's run in progress.
 */
export async function startEmbedded(c: Container): Promise<RunningRole> {
  await migrate(c);
  await ensurePartitionsAtStart(c);
  const worker = startIngestWorker(c);
  const scheduler = await startScheduler(c);
  const deps = buildApiDeps(c);
  const api = await startApi(c, deps);
  const poller = startQueueDepthPoller(c);
  const dev = await ensureDevKey(c.db.prisma, c.config.dataDir);
  const base = `http://${c.config.host}:${api.port}`;
  const hint = [
    "",
    `Triggers is running on ${base} (${c.db.kind === "pglite" ? "embedded PGlite" : "Postgres"}, ${c.emulator ? "in-process SQS emulator" : "SQS"}, ${c.redis ? "Redis" : "no Redis"})`,
    `Development API key for tenant "dev" (saved in ${dev.file}):`,
    "",
    `  ${dev.secret}`,
    "",
    "Try:",
    `  curl -s -X POST ${base}/events -H "Authorization: Bearer ${dev.secret}" -H 'Content-Type: application/json' -d '{"type":"order.created","payload":{"id":42}}'`,
    `  curl -s ${base}/inbox -H "Authorization: Bearer ${dev.secret}"`,
    "",
    `Event console: ${base}/console (paste the key above)`,
    "",
  ].join("\n");
  process.stdout.write(`${hint}\n`);
  return {
    async close() {
      await api.close();
      await drainAll(apiCoalescers(deps));
      await worker.stop();
      await scheduler.close();
      await poller.stop();
    },
  };
}
