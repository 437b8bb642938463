import { Redis } from "ioredis";
import { Queue, Worker, type Job } from "bullmq";
import type { Container } from "../container";
import { expireEvents, type ExpireEventsDeps, type ExpireEventsOptions, type ExpireEventsResult } from "../jobs/expire-events";
import { ExpiryPacer } from "../jobs/expiry-pacer";
import type { ReadinessChecks } from "../observability/readiness";
import { startRoleMetricsServer } from "./observability";
import type { RunningRole } from "./role";

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
}

/** A started scheduler; close() stops it after the run in progress, if any. */
export type RunningScheduler = RunningRole;

/** The one job scheduler id: every scheduler process upserts the same one, so each tick is one job. */
export const EXPIRE_EVENTS_JOB = "expire-events";

/** The BullMQ queue of scheduled maintenance for a deployment prefix. */
export function maintenanceQueueName(redisPrefix: string): string {
  return `${redisPrefix}-maintenance`;
}

/**
 * Runs expireEvents once with the retention settings of config, then records metrics and a log
 * line. A run may take most of one interval but no more, so runs on a healthy system never overlap.
 */
async function runExpiry(c: Container, expire: ExpireFn, everyMs: number, pacer: ExpiryPacer): Promise<ExpireEventsResult> {
  const r = c.config.retention;
  const result = await expire(
    { prisma: c.db.prisma },
    {
      now: new Date(),
      batchSize: r.batchSize,
      acknowledgedRetentionSeconds: r.acknowledgedSeconds,
      deadRetentionSeconds: r.deadSeconds,
      maxEventAgeSeconds: r.maxEventAgeSeconds,
      timeBudgetMs: Math.max(250, Math.floor(everyMs * 0.8)),
      pacer,
      drainWithinMs: r.drainSeconds * 1000,
    },
  );
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
  return result;
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

/**
 * Starts the scheduled maintenance of this process. With REDIS_URL: one BullMQ job scheduler
 * (upserted under a stable id, so any number of scheduler processes register one schedule and each
 * tick runs on exactly one of them) plus a worker that runs expiry with bounded retries. Without
 * it (embedded default): the same run on an in-process timer.
 */
export async function startScheduler(c: Container, opts: SchedulerOptions = {}): Promise<RunningScheduler> {
  const expire = opts.expire ?? expireEvents;
  const everyMs = opts.everyMs ?? c.config.retention.intervalSeconds * 1000;
  const pacer = createPacer(c);
  if (!c.config.redisUrl) return startTimer(c, expire, everyMs, opts.firstRunDelayMs ?? 1000, pacer);

  // BullMQ's own connections: its blocking commands need maxRetriesPerRequest null, unlike the
  // container's fail-fast client. Errors reconnect in the background; they are not fatal.
  const connection = (role: string) => {
    const redis = new Redis(c.config.redisUrl!, { maxRetriesPerRequest: null, connectionName: `${c.config.redisPrefix}-scheduler-${role}` });
    redis.on("error", (err) => c.logger.warn({ err, role }, "scheduler redis connection error"));
    return redis;
  };
  const queueConnection = connection("queue");
  const workerConnection = connection("worker");
  const name = maintenanceQueueName(c.config.redisPrefix);
  const attempts = opts.attempts ?? 5;
  const queue = new Queue(name, { connection: queueConnection });
  const worker = new Worker(name, async (job: Job) => {
    if (job.name !== EXPIRE_EVENTS_JOB) throw new Error(`unknown maintenance job: ${job.name}`);
    return runExpiry(c, expire, everyMs, pacer);
  }, { connection: workerConnection, concurrency: 1 });
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

  const close = async () => {
    await worker.close();
    await queue.close();
    await Promise.allSettled([queueConnection.quit(), workerConnection.quit()]);
  };
  try {
    await queue.upsertJobScheduler(
      EXPIRE_EVENTS_JOB,
      { every: everyMs },
      {
        name: EXPIRE_EVENTS_JOB,
        opts: {
          attempts,
          backoff: { type: "exponential", delay: opts.backoffMs ?? 1000 },
          // Keep a short history for inspection without growing Redis without bound.
          removeOnComplete: 100,
          removeOnFail: 1000,
        },
      },
    );
  } catch (err) {
    await close();
    throw err;
  }
  c.logger.info({ queue: name, everyMs }, "scheduler started (BullMQ)");
  return { close };
}

/**
 * The embedded scheduler: a timer that re-arms after each run (rather than a fixed setInterval),
 * so a run slower than the interval never overlaps the next. A failed run is reported and simply
 * tried again at the next tick; there is no other retry.
 */
function startTimer(c: Container, expire: ExpireFn, everyMs: number, firstRunDelayMs: number, pacer: ExpiryPacer): RunningScheduler {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = runExpiry(c, expire, everyMs, pacer).then(
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
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** The scheduler's dependencies, for /readyz: Postgres, and Redis when configured. */
export function schedulerReadinessChecks(c: Container): ReadinessChecks {
  const redis = c.redis;
  return { postgres: () => c.db.ping(), ...(redis ? { redis: () => redis.ping() } : {}) };
}

/**
 * The `scheduler` process: scheduled maintenance (startScheduler) and the operational endpoints on
 * METRICS_PORT. close() lets the run in progress finish, then stops the metrics server.
 */
export async function startSchedulerRole(c: Container, opts: SchedulerOptions = {}): Promise<RunningRole> {
  const scheduler = await startScheduler(c, opts);
  const metrics = await startRoleMetricsServer(c, schedulerReadinessChecks(c));
  return {
    async close() {
      await scheduler.close();
      await metrics.close();
    },
  };
}
