import type { Redis } from "ioredis";
import { Queue, Worker, type Job } from "bullmq";
import type { Container } from "../container";
import { withTimeout } from "../deadline";
import { expireEvents, type ExpireEventsDeps, type ExpireEventsOptions, type ExpireEventsResult } from "../jobs/expire-events";
import { ExpiryHeartbeat } from "../jobs/expiry-heartbeat";
import { ExpiryPacer } from "../jobs/expiry-pacer";
import { createRedisConnection, watchRedis } from "../redis-connection";
import type { ReadinessChecks } from "../observability/readiness";
import { startRoleMetricsServer } from "./observability";
import type { RunningRole } from "./role";
import { errorMessage } from "../errors";
import { schemaCurrentCheck } from "../store/schema-version";
import { ensurePartitions } from "../store/partitions";
import { retirePartitions } from "../store/retention";

/** The expiry job's signature; the wiring takes it as a parameter so tests can make a run fail. */
export type ExpireFn = (deps: ExpireEventsDeps, opts: ExpireEventsOptions) => Promise<ExpireEventsResult>;

/** Overrides of the wiring, for tests; production uses the defaults from config. */
export interface SchedulerOptions {
  /** The job function (default expireEvents). */
  readonly expire?: ExpireFn;
  /** Tick interval, ms (default EXPIRY_INTERVAL_SECONDS × 1000). */
  readonly everyMs?: number;
  /** First delay of BullMQ's exponential retry backoff, ms (default 1000: 1 s, 2 s, 4 s, 8 s). */
  readonly backoffMs?: number;
  /** Attempts per tick before a run counts as failed for good (default 5). */
  readonly attempts?: number;
  /** Delay of the first run on the embedded timer, ms (default 1000). */
  readonly firstRunDelayMs?: number;
  /** How often the job scheduler's registration in Redis is checked, ms (default JOB_SCHEDULER_CHECK_MS). */
  readonly checkEveryMs?: number;
}

/** A started scheduler; close() stops it after the run in progress, if any. */
export interface RunningScheduler extends RunningRole {
  /** When expiry last completed (for the gauge and /readyz). */
  readonly heartbeat: ExpiryHeartbeat;
}

/**
 * How often each scheduler process checks that Redis still has the job scheduler, ms. Redis forgets
 * it on a flush, a failover to a replica that missed it, or an eviction; nothing would tick again.
 */
export const JOB_SCHEDULER_CHECK_MS = 2000;

/** BullMQ worker's wait before it retries after a Redis connection error, ms. */
const RUN_RETRY_DELAY_MS = 1000;

/** How late past its interval a job scheduler's next job may be before it is registered again, ms. */
const SCHEDULE_SLACK_MS = 5000;

/** The one job scheduler id: every scheduler process upserts the same one, so each tick is one job. */
export const EXPIRE_EVENTS_JOB = "expire-events";

/** The BullMQ queue of scheduled maintenance for a deployment prefix. */
export function maintenanceQueueName(redisPrefix: string): string {
  return `${redisPrefix}-maintenance`;
}

/**
 * One run of the maintenance job: ensures the partitions ahead (PARTITIONS_AHEAD) and retires
 * the partitions past retention (maintainPartitions), then runs
 * expireEvents once with the retention settings of config, then records metrics and a log line. A run may take most of one interval but no more, so runs on a healthy system never overlap.
 */
async function runExpiry(c: Container, expire: ExpireFn, everyMs: number, pacer: ExpiryPacer, heartbeat: ExpiryHeartbeat): Promise<ExpireEventsResult> {
  const r = c.config.retention;
  // The partition step first (partitions ahead); its failure does not keep expiry from running,
  // but fails the run afterwards, so it is logged, retried and counted like any failed run.
  let partitionError: unknown;
  try {
    await maintainPartitions(c);
  } catch (err) {
    partitionError = err;
  }
  const result = await expire(
    { prisma: c.db.prisma },
    {
      now: new Date(),
      batchSize: r.batchSize,
      acknowledgedRetentionSeconds: r.acknowledgedSeconds,
      deadRetentionSeconds: r.deadSeconds,
      maxEventAgeSeconds: r.maxEventAgeSeconds,
      partitionIntervalSeconds: c.config.partitions.intervalSeconds,
      timeBudgetMs: Math.max(250, Math.floor(everyMs * 0.8)),
      pacer,
      drainWithinMs: r.drainSeconds * 1000,
    },
  );
  heartbeat.completed(Date.now());
  for (const kind of ["acknowledged", "dead", "stale"] as const) {
    if (result[kind] > 0) c.metrics.expiryDeleted.inc({ kind }, result[kind]);
  }
  c.metrics.expiryDuration.observe(result.durationMs / 1000);
  const { acknowledged, dead, stale, batches, durationMs, complete, incompleteReason, pacing } = result;
  if (pacing) c.metrics.expiryDuty.set(pacing.duty);
  const pace = pacing && { duty: pacing.duty, floorDuty: pacing.floorDuty, deadlineAtRisk: pacing.deadlineAtRisk, batchSize: pacing.batchSize, backoffs: pacing.runBackoffs, speedups: pacing.runSpeedups, interference: pacing.interference, slowdown: pacing.slowdown };
  if (complete) {
    c.logger.info({ job: EXPIRE_EVENTS_JOB, acknowledged, dead, stale, batches, durationMs, complete, pacing: pace }, "expiry run finished");
  } else {
    // Not an error by itself (the next run continues), but a sustained count means expiry cannot keep up.
    c.metrics.expiryIncomplete.inc({ reason: incompleteReason ?? "budget" });
    const why = incompleteReason === "backed-off"
      ? `backed off for live traffic (${pacing?.lastBackoffReason ?? "?"}); the rest is left for the next run`
      : pacing?.deadlineAtRisk
        ? "the backlog cannot be cleared within EXPIRY_DRAIN_SECONDS even at EXPIRY_MAX_DUTY"
        : "the backlog is larger than one run can delete at the fastest allowed pace";
    c.logger.warn({ job: EXPIRE_EVENTS_JOB, acknowledged, dead, stale, batches, durationMs, complete, incompleteReason, pacing: pace }, `expiry run ended with expired rows left: ${why}`);
  }
  if (partitionError !== undefined) throw new Error(`partition step failed: ${errorMessage(partitionError)}`, { cause: partitionError });
  return result;
}

/**
 * The partition step of the maintenance job: partitions ensured ahead (PARTITIONS_AHEAD), then
 * the pairs past retention retired by drop (retention.ts), with the waiting gauges set.
 */
async function maintainPartitions(c: Container): Promise<void> {
  const now = new Date();
  await ensurePartitions(c.db.prisma, now, c.config.partitions);
  const r = c.config.retention;
  const result = await retirePartitions(c.db, {
    now,
    acknowledgedRetentionSeconds: r.acknowledgedSeconds,
    deadRetentionSeconds: r.deadSeconds,
    maxEventAgeSeconds: r.maxEventAgeSeconds,
  });
  if (result.skipped) return; // another scheduler process is retiring: its gauges say it
  if (result.retired.length > 0) c.metrics.partitionsRetired.inc(result.retired.length);
  c.metrics.partitionsWaiting.set(result.waiting.length);
  const oldest = result.waiting[0];
  c.metrics.partitionsWaitingOldest.set(oldest ? Math.max(0, (now.getTime() - oldest.upper.getTime()) / 1000) : 0);
  if (result.retired.length > 0 || result.reattached.length > 0) {
    c.logger.info({ job: EXPIRE_EVENTS_JOB, retired: result.retired, reattached: result.reattached, keysDeleted: result.keysDeleted, waiting: result.waiting.map((p) => p.name) }, "partitions retired");
  }
  // Also the CloudWatch alarm's source (terraform/modules/triggers/alarms.tf, partitions_waiting).
  if (oldest) {
    const oldestWaitingSeconds = Math.round((now.getTime() - oldest.upper.getTime()) / 1000);
    c.logger.info({ job: EXPIRE_EVENTS_JOB, waiting: result.waiting.map((p) => p.name), oldestWaitingSeconds }, "partitions past their time wait for a live delivery");
  }
}

/** The process's one pacer: what it learns (baseline, duty) carries from run to run. */
function createPacer(c: Container): ExpiryPacer {
  const r = c.config.retention;
  const pacer = new ExpiryPacer({
    minBatchSize: r.minBatchSize,
    maxBatchSize: r.batchSize,
    minDuty: r.minDuty,
    maxDuty: r.maxDuty,
    minRestMs: r.pauseMs,
    maxRestMs: r.maxRestMs,
    interferenceTolerance: r.interferenceTolerance,
  });
  pacer.onDecision((action, s) => {
    c.metrics.expiryPacing.inc({ action, reason: action === "back-off" ? (s.lastBackoffReason ?? "unknown") : "none" });
    c.metrics.expiryDuty.set(s.duty);
  });
  return pacer;
}

/** The Redis key where the scheduler processes share when expiry last completed (epoch ms). */
function lastRunKey(redisPrefix: string): string {
  return `${redisPrefix}:expiry:last-run`;
}

/** One BullMQ job scheduler of the maintenance queue: its id (also the job name) and its interval. */
interface JobSchedulerSpec {
  readonly id: string;
  readonly everyMs: number;
  readonly template: ReturnType<typeof jobTemplate>;
}

/** A job scheduler's template: every tick is one job named `name` with bounded retries. */
function jobTemplate(name: string, attempts: number, backoffMs: number) {
  return {
    name,
    opts: {
      attempts,
      backoff: { type: "exponential", delay: backoffMs },
      // Keep a short history for inspection without growing Redis without bound.
      removeOnComplete: 100,
      removeOnFail: 1000,
    },
  };
}

/**
 * Starts the scheduled maintenance of this process. With REDIS_URL: one BullMQ job scheduler
 * (upserted under a stable id, so any number of scheduler processes register one schedule and each
 * tick runs on exactly one of them) plus a worker that runs expiry with bounded retries, and a
 * check every JOB_SCHEDULER_CHECK_MS that registers the job scheduler again when Redis lost it.
 * Without it (embedded default): the same run on an in-process timer.
 */
export async function startScheduler(c: Container, opts: SchedulerOptions = {}): Promise<RunningScheduler> {
  const expire = opts.expire ?? expireEvents;
  const everyMs = opts.everyMs ?? c.config.retention.intervalSeconds * 1000;
  const pacer = createPacer(c);
  const heartbeat = new ExpiryHeartbeat(c.config.retention.overdueSeconds);
  if (!c.config.redisUrl) return startTimer(c, expire, everyMs, opts.firstRunDelayMs ?? 1000, pacer, heartbeat);

  // BullMQ's own connections: its blocking commands need maxRetriesPerRequest null, unlike the
  // container's fail-fast client. Errors reconnect in the background; they are not fatal. The
  // watchdog replaces a connection that stops answering (BullMQ's blocking connection, a
  // duplicate without it, has BullMQ's own).
  const connection = (role: string) => {
    const name = `${c.config.redisPrefix}-scheduler-${role}`;
    const redis = createRedisConnection(
      c.config.redisUrl!,
      { maxRetriesPerRequest: null, connectionName: name, connectTimeout: c.config.redisConnectTimeoutMs },
      { name, logger: c.logger, pingTimeoutMs: c.config.redisCommandTimeoutMs, handshakeTimeoutMs: c.config.redisConnectTimeoutMs },
    );
    redis.on("error", (err) => c.logger.warn({ err, role }, "scheduler redis connection error"));
    // The Worker's blocking connection is a duplicate of this one: its handshake is watched too (a
    // PING would wait behind BZPOPMIN; BullMQ's own watchdog covers a blocked command).
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (override) => {
      const copy = duplicate(override);
      watchRedis(copy, { name: `${name}-blocking`, logger: c.logger, pingTimeoutMs: c.config.redisCommandTimeoutMs, handshakeTimeoutMs: c.config.redisConnectTimeoutMs, ping: false });
      return copy;
    };
    return redis;
  };
  const queueConnection = connection("queue");
  const workerConnection = connection("worker");
  const name = maintenanceQueueName(c.config.redisPrefix);
  const attempts = opts.attempts ?? 5;
  // Every job scheduler of the maintenance queue: registered at start, and again whenever Redis lost it.
  const schedules: JobSchedulerSpec[] = [{ id: EXPIRE_EVENTS_JOB, everyMs, template: jobTemplate(EXPIRE_EVENTS_JOB, attempts, opts.backoffMs ?? 1000) }];
  const queue = new Queue(name, { connection: queueConnection });
  const worker = new Worker(name, async (job: Job) => {
    if (job.name !== EXPIRE_EVENTS_JOB) throw new Error(`unknown maintenance job: ${job.name}`);
    const result = await runExpiry(c, expire, everyMs, pacer, heartbeat);
    // Shared with the other scheduler processes (best effort: their gauge and /readyz read it).
    await withTimeout(workerConnection.set(lastRunKey(c.config.redisPrefix), String(heartbeat.lastRunAt)), c.config.redisCommandTimeoutMs, "recording the expiry run").catch(() => undefined);
    return result;
  }, {
    connection: workerConnection,
    concurrency: 1,
    // After a connection error BullMQ waits this long before trying again to fetch a job, to record
    // a finished one, or to add a scheduler's next job, and the worker takes nothing meanwhile. Its
    // default (15 s) holds expiry back that long after Redis returns; one try a second costs nothing.
    runRetryDelay: RUN_RETRY_DELAY_MS,
  });
  worker.on("failed", (job, err) => {
    if (!job) return;
    const final = job.finishedOn !== undefined || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final) {
      c.metrics.expiryFailures.inc();
      c.logger.error({ err, job: job.name, jobId: job.id, attemptsMade: job.attemptsMade }, "expiry run failed; giving up until the next tick");
    } else {
      c.logger.warn({ err, job: job.name, jobId: job.id, attemptsMade: job.attemptsMade, attempts }, "expiry run failed; will retry");
    }
  });
  worker.on("error", (err) => c.logger.error({ err }, "scheduler worker error"));

  let keeper: RegistrationKeeper | undefined;
  const close = async () => {
    await keeper?.stop();
    await worker.close();
    await queue.close();
    await Promise.allSettled([queueConnection.quit(), workerConnection.quit()]);
  };
  try {
    for (const j of schedules) await queue.upsertJobScheduler(j.id, { every: j.everyMs }, j.template);
  } catch (err) {
    await close();
    throw err;
  }
  keeper = keepRegistered(c, queue, schedules, opts.checkEveryMs ?? JOB_SCHEDULER_CHECK_MS, async (deadlineMs) => {
    // The last expiry run of any scheduler process, for this one's gauge and /readyz.
    const shared = await withTimeout(queueConnection.get(lastRunKey(c.config.redisPrefix)), deadlineMs, "reading the last expiry run");
    if (shared !== null && Number.isFinite(Number(shared))) heartbeat.completed(Number(shared));
  });
  c.logger.info({ queue: name, everyMs }, "scheduler started (BullMQ)");
  return { heartbeat, close };
}

interface RegistrationKeeper {
  stop(): Promise<void>;
}

/**
 * Every `checkEveryMs`: registers each job scheduler of `schedules` again when Redis no longer has
 * it or its next job is more than an interval + SCHEDULE_SLACK_MS late (logged as a warning), then runs `alsoEach` (with the deadline of one step). Each step has the
 * Redis command deadline; a Redis that is down is simply tried again at the next check.
 */
function keepRegistered(
  c: Container,
  queue: Queue,
  schedules: readonly JobSchedulerSpec[],
  checkEveryMs: number,
  alsoEach: (deadlineMs: number) => Promise<void>,
): RegistrationKeeper {
  const deadlineMs = Math.max(1000, c.config.redisCommandTimeoutMs);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let lastFailure = 0;
  const check = async () => {
    for (const j of schedules) {
      const registered = await withTimeout(queue.getJobScheduler(j.id), deadlineMs, "reading the job scheduler");
      // BullMQ adds each next job when the current one starts; if that failed (Redis away at that
      // moment, past its retries), the scheduler stays registered with a `next` that never comes.
      const overdueMs = registered?.next === undefined ? 0 : Date.now() - registered.next;
      if ((registered && overdueMs <= j.everyMs + SCHEDULE_SLACK_MS) || stopped) continue;
      await withTimeout(queue.upsertJobScheduler(j.id, { every: j.everyMs }, j.template), deadlineMs, "registering the job scheduler");
      const why = registered ? `its next job is ${Math.round(overdueMs / 1000)} s overdue` : "it was missing from Redis";
      c.logger.warn({ job: j.id, everyMs: j.everyMs }, `job scheduler re-registered: ${why}`);
    }
    await alsoEach(deadlineMs);
  };
  const tick = () => {
    running = check().catch((err: unknown) => {
      // One line per minute at most while Redis is away; the redis check of /readyz says the rest.
      if (Date.now() - lastFailure < 60_000) return;
      lastFailure = Date.now();
      c.logger.warn({ err: errorMessage(err) }, "cannot check the job schedulers in Redis; trying again");
    }).finally(() => {
      if (!stopped) {
        timer = setTimeout(tick, checkEveryMs);
        timer.unref();
      }
    });
  };
  timer = setTimeout(tick, checkEveryMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * The embedded scheduler: a timer that re-arms after each run (rather than a fixed setInterval),
 * so a run slower than the interval never overlaps the next. A failed run is reported and simply
 * tried again at the next tick; there is no other retry.
 */
function startTimer(c: Container, expire: ExpireFn, everyMs: number, firstRunDelayMs: number, pacer: ExpiryPacer, heartbeat: ExpiryHeartbeat): RunningScheduler {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = runExpiry(c, expire, everyMs, pacer, heartbeat).then(
      () => undefined,
      (err: unknown) => {
        c.metrics.expiryFailures.inc();
        c.logger.error({ err, job: EXPIRE_EVENTS_JOB }, "expiry run failed; trying again at the next tick");
      },
    ).finally(() => {
      if (!stopped) timer = setTimeout(tick, everyMs);
    });
  };
  timer = setTimeout(tick, firstRunDelayMs);
  c.logger.info({ everyMs }, "scheduler started (in-process timer, no REDIS_URL)");
  return {
    heartbeat,
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/**
 * The scheduler's /readyz: Postgres, Redis when configured, and expiry itself (fails once no run
 * completed for EXPIRY_OVERDUE_SECONDS, whatever the cause).
 */
export function schedulerReadinessChecks(c: Container, heartbeat: ExpiryHeartbeat): ReadinessChecks {
  const redis = c.redis;
  return { postgres: () => c.db.ping(), schema: schemaCurrentCheck(c.db.prisma), ...(redis ? { redis: () => redis.ping() } : {}), expiry: () => heartbeat.check() };
}

/**
 * The `scheduler` process: scheduled maintenance (startScheduler) and the operational endpoints on
 * METRICS_PORT. close() lets the run in progress finish, then stops the metrics server.
 */
export async function startSchedulerRole(c: Container, opts: SchedulerOptions = {}): Promise<RunningRole> {
  const scheduler = await startScheduler(c, opts);
  scheduler.heartbeat.register(c.metrics.registry);
  const metrics = await startRoleMetricsServer(c, schedulerReadinessChecks(c, scheduler.heartbeat));
  return {
    async close() {
      await scheduler.close();
      await metrics.close();
    },
  };
}
