import type { Redis } from "ioredis";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "./config";
import { createLogger, type Logger } from "./observability/logger";
import { createMetrics, type Metrics } from "./observability/metrics";
import { createQueues } from "./queue/create-queues";
import { createRedisConnection } from "./redis-connection";
import { createSqsClient, SqsQueue } from "./queue/sqs-queue";
import { startSqsEmulator, type RunningEmulator } from "./queue/sqs-emulator";
import { openDatabase, type Database } from "./store/database";

/** The process's shared clients, built once by the composition root and passed down as arguments. */
export interface Container {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly db: Database;
  readonly sqs: SQSClient;
  readonly queue: SqsQueue;
  readonly dlq: SqsQueue | undefined;
  /** For rate limits and the idempotency fast path: fails fast instead of queueing while Redis is down. */
  readonly redis: Redis | undefined;
  /** Set when SQS runs in-process (embedded default). */
  readonly emulator: RunningEmulator | undefined;
  close(): Promise<void>;
}

/**
 * Builds the clients from config: real Postgres when DATABASE_URL is set (PGlite otherwise), real
 * SQS or an emulator at SQS_ENDPOINT (an in-process one when neither is set), Redis when REDIS_URL
 * is set.
 */
export async function buildContainer(config: Config, opts: { logger?: Logger; poolSize?: number } = {}): Promise<Container> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const db = await openDatabase(config, opts.poolSize === undefined ? {} : { poolSize: opts.poolSize });
    closers.push(() => db.close());

    let emulator: RunningEmulator | undefined;
    let endpoint = config.sqs.endpoint;
    if (!endpoint && !config.sqs.queueUrl) {
      emulator = await startSqsEmulator({ region: config.sqs.region });
      closers.push(() => emulator!.stop());
      endpoint = emulator.endpoint;
      logger.info({ endpoint }, "started in-process SQS emulator");
    }
    // Receives long-poll for up to waitSeconds, so this client's per-attempt timeout leaves room for that.
    const sqs = createSqsClient({
      region: config.sqs.region,
      endpoint,
      connectTimeoutMs: config.sqs.connectTimeoutMs,
      requestTimeoutMs: config.worker.waitSeconds * 1000 + config.sqs.requestTimeoutMs,
    });
    closers.push(async () => sqs.destroy());
    // Sends get their own client: short per-attempt timeouts and at most maxConcurrentSends sockets.
    const sqsSend = createSqsClient({
      region: config.sqs.region,
      endpoint,
      connectTimeoutMs: config.sqs.connectTimeoutMs,
      requestTimeoutMs: config.sqs.requestTimeoutMs,
      maxSockets: config.sqs.maxConcurrentSends,
    });
    closers.push(async () => sqsSend.destroy());
    const sendLimits = { client: sqsSend, timeoutMs: config.sqs.sendTimeoutMs, maxConcurrent: config.sqs.maxConcurrentSends };
    let queueUrl = config.sqs.queueUrl;
    let dlqUrl = config.sqs.dlqUrl;
    if (!queueUrl) {
      const created = await createQueues(sqs, {
        name: config.sqs.queueName,
        maxReceiveCount: config.sqs.maxReceiveCount,
        visibilitySeconds: config.worker.visibilitySeconds,
      });
      queueUrl = created.queueUrl;
      dlqUrl = created.dlqUrl;
    }

    let redis: Redis | undefined;
    if (config.redisUrl) {
      redis = createRedisConnection(
        config.redisUrl,
        {
          // Deadlines: each command fails after commandTimeout (callers degrade: memory limiter,
          // Postgres for idempotency, memory receipts); no offline queue, so while disconnected a
          // command fails at once instead of waiting; one retry per command at most.
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          commandTimeout: config.redisCommandTimeoutMs,
          connectTimeout: config.redisConnectTimeoutMs,
          // Commands issued in the same event-loop turn (the rate-limit script, idempotency claims and
          // receipts of concurrent requests) leave in one socket write instead of one write each.
          enableAutoPipelining: true,
          // Keep retrying forever in the background; callers degrade while it is down.
          retryStrategy: (times) => Math.min(times * 200, 2000),
        },
        // Commands that keep timing out on a connection that looks open (a frozen or failed-over
        // Redis) get no socket error: the watchdog's PINGs time out too, and it replaces the socket.
        { name: `${config.redisPrefix}-shared`, logger, pingTimeoutMs: config.redisCommandTimeoutMs, handshakeTimeoutMs: config.redisConnectTimeoutMs },
      );
      redis.on("error", () => undefined); // state is visible through redis.status and /readyz
      closers.push(async () => redis!.quit().catch(() => redis!.disconnect()));
      await firstConnection(redis, config.redisConnectTimeoutMs);
    }

    return {
      config,
      logger,
      metrics,
      db,
      sqs,
      queue: new SqsQueue(sqs, queueUrl, sendLimits),
      dlq: dlqUrl ? new SqsQueue(sqs, dlqUrl) : undefined,
      redis,
      emulator,
      async close() {
        for (const close of closers.reverse()) await close().catch(() => undefined);
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Waits for Redis's first connection, at most `ms`: without an offline queue, commands sent while it
 * is still connecting fail at once, so a process that served before it connected would start on its
 * fallbacks (memory limiter, process-local claims) for no reason. A Redis that refuses ends the wait
 * at its first error; one that never answers, at the connect deadline. Either way the process starts,
 * degraded, and Redis keeps reconnecting in the background.
 */
async function firstConnection(redis: Redis, ms: number): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off("ready", done);
      redis.off("error", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    redis.once("ready", done);
    redis.once("error", done);
  });
}

