import type { Container } from "../src/container";
import { IngestWorker } from "../src/ingest/ingest-worker";

/** Starts the ingest drain loop of a worker process on the container's clients. */
export function startIngestWorker(c: Container): IngestWorker {
  const worker = new IngestWorker(
    { prisma: c.db.prisma, queue: c.queue, logger: c.logger, metrics: c.metrics },
    {
      receivers: c.config.worker.receivers,
      waitSeconds: c.config.worker.waitSeconds,
      visibilitySeconds: c.config.worker.visibilitySeconds,
    },
  );
  worker.start();
  c.logger.info({ receivers: c.config.worker.receivers }, "ingest worker started");
  return worker;
}
