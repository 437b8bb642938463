import type { Container } from "../container";
import { IngestWorker, type IngestWorkerOptions } from "../ingest/ingest-worker";
import type { StoreMessagesFn } from "../ingest/store-messages";
import type { ReadinessChecks } from "../observability/readiness";
import type { SqsQueue } from "../queue/sqs-queue";
import { startQueueDepthPoller, startRoleMetricsServer } from "./observability";
import type { RunningRole } from "./role";
import { schemaCurrentCheck } from "../store/schema-version";
import { withTimeout } from "../deadline";
import { ensurePartitions } from "../store/partitions";

/** Longest the start-up waits for the partitions to be ensured, ms. */
const ENSURE_PARTITIONS_AT_START_MS = 30_000;

/**
 * Ensures the partitions of events and deliveries from one interval back to PARTITIONS_AHEAD
 * ahead before the worker stores anything. A failure is logged, not fatal: the scheduler's job
 * ensures them on every run, and an insert that meets a missing partition creates it.
 */
export async function ensurePartitionsAtStart(c: Pick<Container, "config" | "db" | "logger">): Promise<void> {
  try {
    const created = await withTimeout(ensurePartitions(c.db.prisma, new Date(), c.config.partitions), ENSURE_PARTITIONS_AT_START_MS, "ensuring partitions");
    c.logger.info({ created, intervalSeconds: c.config.partitions.intervalSeconds, ahead: c.config.partitions.ahead }, "partitions ensured");
  } catch (err) {
    c.logger.warn({ err }, "could not ensure partitions at start; the scheduler and the insert will");
  }
}

/** What an ingest worker is built from: a container, or the same parts a bench assembles itself. */
export type IngestWorkerParts = Pick<Container, "config" | "db" | "queue" | "logger" | "metrics">;

/** Overrides of the ingest worker, for tests and benches; production uses WORKER_* from config. */
export interface IngestWorkerOverrides extends Partial<IngestWorkerOptions> {
  /** The queue to drain (default the container's). */
  readonly queue?: SqsQueue;
  /** The store step (default storeMessages); tests pass one that fails. */
  readonly store?: StoreMessagesFn;
}

/** Builds the process's ingest worker (not started): the one place an IngestWorker is made. */
export function createIngestWorker(c: IngestWorkerParts, overrides: IngestWorkerOverrides = {}): IngestWorker {
  const w = c.config.worker;
  return new IngestWorker(
    { prisma: c.db.prisma, queue: overrides.queue ?? c.queue, logger: c.logger, metrics: c.metrics, ...(overrides.store ? { store: overrides.store } : {}) },
    {
      receivers: overrides.receivers ?? w.receivers,
      waitSeconds: overrides.waitSeconds ?? w.waitSeconds,
      visibilitySeconds: overrides.visibilitySeconds ?? w.visibilitySeconds,
    },
  );
}

/** Builds and starts the ingest drain loop (the worker part of the `worker` and `start` processes). */
export function startIngestWorker(c: IngestWorkerParts, overrides: IngestWorkerOverrides = {}): IngestWorker {
  const worker = createIngestWorker(c, overrides);
  worker.start();
  c.logger.info({ receivers: overrides.receivers ?? c.config.worker.receivers }, "ingest worker started");
  return worker;
}

/** The worker's dependencies, for /readyz: Postgres and SQS. */
export function workerReadinessChecks(c: Container): ReadinessChecks {
  return { postgres: () => c.db.ping(), schema: schemaCurrentCheck(c.db.prisma), sqs: () => c.queue.depth() };
}

/** The started worker role; `worker` is its ingest worker. */
export interface RunningWorkerRole extends RunningRole {
  readonly worker: IngestWorker;
}

/**
 * The `worker` process: partitions ensured (ensurePartitionsAtStart), the ingest worker (SQS -> Postgres), the queue depth gauges and the
 * operational endpoints on METRICS_PORT. close() stops receiving at once and commits the batches
 * in hand (then deletes them from SQS) before it stops the poller and the metrics server.
 */
export async function startWorkerRole(c: Container): Promise<RunningWorkerRole> {
  await ensurePartitionsAtStart(c);
  const worker = startIngestWorker(c);
  const poller = startQueueDepthPoller(c);
  const metrics = await startRoleMetricsServer(c, workerReadinessChecks(c));
  return {
    worker,
    async close() {
      await worker.stop();
      await poller.stop();
      await metrics.close();
    },
  };
}
