import type { Container } from "../container";
import type { ApiDeps } from "../api/deps";
import { KeyCache } from "../api/middleware/auth";
import { apiReadinessChecks } from "../api/routes/health";
import { startApi, type RunningApi } from "../api/server";
import { Wakeups } from "../inbox/wakeups";
import { LongPollQuota } from "../inbox/long-poll-quota";
import type { AcceptDeps } from "../ingest/accept-events";
import { AcceptedReceipts } from "../ingest/accepted-receipts";
import { IdempotencyGuard } from "../ingest/idempotency";
import { SendBatcher } from "../queue/send-batcher";
import { SchemaRegistry } from "../schemas/registry";
import { startBacklogPoller, startQueueDepthPoller, startRoleMetricsServer } from "./observability";
import type { RunningRole } from "./role";
import { errorMessage } from "../errors";
import { drainAll, type Drainable } from "../coalescer";

/** Builds every service of the HTTP API on a container's clients. */
export function buildApiDeps(c: Container): ApiDeps {
  const batcher = new SendBatcher(c.queue, c.config.sqs.sendLingerMs, (size, _failed, seconds) => {
    c.metrics.sqsSendBatches.observe(size);
    c.metrics.sqsSendSeconds.observe(seconds);
  });
  const idempotency = new IdempotencyGuard(
    c.db.prisma,
    c.redis,
    c.config.redisPrefix,
    (err) => c.logger.warn({ err: errorMessage(err) }, "redis unavailable for idempotency; using Postgres"),
    (err) => c.logger.warn({ err: errorMessage(err) }, "postgres unavailable for the idempotency record; relying on the first-send claim"),
    { claimsPerTenant: c.config.limits.idempotencyClaimsPerTenant, claimsTotal: c.config.limits.idempotencyClaimsTotal },
  );
  const receipts = new AcceptedReceipts(c.redis, c.config.redisPrefix);
  const accept: AcceptDeps = {
    batcher,
    idempotency,
    receipts,
    onAccepted: (n) => c.metrics.eventsAccepted.inc(n),
    onEnqueueFailed: (n) => c.metrics.enqueueFailures.inc(n),
    onRefused: (tenantId, eventId, cause, inputFault) => c.logger.warn({ tenant: tenantId, eventId, err: cause, inputFault }, "the event queue refused an event"),
  };
  return {
    config: c.config,
    db: c.db,
    queue: c.queue,
    batcher,
    idempotency,
    receipts,
    accept,
    keys: new KeyCache(c.db.prisma, c.config.apiKeyCacheMs),
    redis: c.redis,
    logger: c.logger,
    metrics: c.metrics,
    wakeups: new Wakeups({ db: c.db, logger: c.logger, safetyMs: c.config.inbox.longPollRecheckMs, onWaiting: (n) => c.metrics.longPollWaiters.set(n) }),
    longPolls: new LongPollQuota(c.config.inbox.longPollsPerKey, c.config.inbox.longPollsPerTenant, (scope) => c.metrics.longPollsRefused.inc({ scope })),
    schemas: new SchemaRegistry({
      prisma: c.db.prisma,
      bounds: c.config.schemas,
      ttlMs: c.config.schemas.cacheTtlMs,
      maxTenants: c.config.schemas.cacheTenants,
      redis: c.redis,
      prefix: c.config.redisPrefix,
      logger: c.logger,
    }),
  };
}

/**
 * The API's coalescers, in the order shutdown drains them once no request is left: the sends of
 * the last 202s, then their receipts (before the container closes Redis).
 */
export function apiCoalescers(deps: ApiDeps): Drainable[] {
  return [deps.batcher, deps.receipts];
}

/** Overrides of the API role, for tests and benches; production runs everything. */
export interface ApiRoleOptions {
  /**
   * Serve /healthz, /readyz and /metrics on METRICS_PORT as well (default true), where the
   * container health check probes every role; the same port as PORT means the API's own listener
   * serves them already. Tests, which run many APIs on one machine, turn it off.
   */
  readonly metricsServer?: boolean;
  /** Keep the queue depth gauges and the largest-backlog gauge current (default true). */
  readonly queueDepth?: boolean;
}

/** The started API role; `api` is its HTTP server, with the dependencies it runs on. */
export interface RunningApiRole extends RunningRole {
  readonly api: RunningApi;
}

/**
 * The `api` process: the HTTP API on PORT with every service it needs, the queue depth and largest-backlog gauges, and
 * the operational endpoints on METRICS_PORT. close() stops taking requests first (in-flight ones
 * finish), drains the API's coalescers (their sends and receipts complete), then stops the
 * metrics server and the poller.
 */
export async function startApiRole(c: Container, opts: ApiRoleOptions = {}): Promise<RunningApiRole> {
  const deps = buildApiDeps(c);
  deps.schemas.start();
  const api = await startApi(c, deps);
  const poller = opts.queueDepth === false ? undefined : startQueueDepthPoller(c);
  const backlog = opts.queueDepth === false ? undefined : startBacklogPoller(c);
  c.logger.info({ port: api.port, host: c.config.host }, "api listening");
  const metrics = opts.metricsServer === false || c.config.metricsPort === api.port ? undefined : await startRoleMetricsServer(c, apiReadinessChecks(deps));
  return {
    api,
    async close() {
      await api.close();
      await drainAll(apiCoalescers(deps));
      await deps.schemas.close();
      await metrics?.close();
      await poller?.stop();
      await backlog?.stop();
    },
  };
}
