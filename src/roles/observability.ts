import type { Container } from "../container";
import { startMetricsServer, type RunningMetricsServer } from "../observability/metrics-server";
import { QueueDepthPoller } from "../observability/queue-depth-poller";
import { SubscriptionBacklogPoller } from "../observability/backlog-poller";
import { largestBacklogs } from "../store/subscription-backlog";
import type { ReadinessChecks } from "../observability/readiness";

/*
 * The operational services the roles share: each role's file says which of them it runs.
 */

/** Serves /metrics, /healthz and /readyz (the role's own dependencies) of a role on METRICS_PORT. */
export async function startRoleMetricsServer(c: Container, checks: ReadinessChecks): Promise<RunningMetricsServer> {
  const server = await startMetricsServer({ registry: c.metrics.registry, checks, host: c.config.host, port: c.config.metricsPort, logger: c.logger });
  c.logger.info({ port: server.port, host: c.config.host }, "metrics server listening");
  return server;
}

/** Keeps the queue depth gauges of the main queue and the DLQ current (API and worker roles). */
export function startQueueDepthPoller(c: Container): QueueDepthPoller {
  return new QueueDepthPoller({ queues: { main: c.queue, dlq: c.dlq }, metrics: c.metrics, logger: c.logger }).start();
}

/** Keeps the largest-backlog gauge current (API role; BACKLOG_TOP_N subscriptions, 0 for none). */
export function startBacklogPoller(c: Container): SubscriptionBacklogPoller {
  return new SubscriptionBacklogPoller({ source: (n) => largestBacklogs(c.db.prisma, n), topN: c.config.backlogTopN, metrics: c.metrics, logger: c.logger }).start();
}
