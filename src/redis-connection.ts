import { Redis, type RedisOptions } from "ioredis";
import { withTimeout } from "./deadline";
import type { Logger } from "./observability/logger";

/** Idle time before the first TCP keep-alive probe of every Redis connection, ms. */
export const REDIS_KEEPALIVE_MS = 5000;
/** How often the watchdog checks a connection (a PING when it is ready), ms. */
export const REDIS_WATCH_EVERY_MS = 1000;
/** Unanswered PINGs in a row after which a ready connection is replaced. */
export const REDIS_PING_MISSES = 2;
/** Least deadline of a watchdog PING, ms: a busy event loop must not pass for a dead Redis. */
const MIN_PING_TIMEOUT_MS = 1000;

/** What a watchdog needs besides the client. */
export interface RedisWatchdogOptions {
  /** The connection's name in logs. */
  readonly name: string;
  readonly logger: Logger;
  /** Deadline of each PING, ms (at least 1000). */
  readonly pingTimeoutMs: number;
  /** Longest a connection may stay connected without finishing its handshake, ms. */
  readonly handshakeTimeoutMs: number;
  /** Called each time the connection is replaced (a metric, a test). */
  readonly onReplace?: (reason: string) => void;
  /** PING the ready connection (default true); false for a connection that blocks (BZPOPMIN), where a PING waits its turn. */
  readonly ping?: boolean;
}

/**
 * Replaces a Redis connection that stopped answering. ioredis reconnects only after a socket
 * error, and a connection whose peer is gone without a reset (a frozen or failed-over Redis, a
 * middlebox that dropped it) gives none: every command would time out for as long as the kernel
 * keeps retransmitting (~15 min), and one opened while Redis hung would never finish its handshake
 * (ioredis's connect timeout ends at the TCP connect). Every REDIS_WATCH_EVERY_MS the watchdog
 * PINGs a ready connection with a deadline; after REDIS_PING_MISSES unanswered in a row, or a
 * handshake older than `handshakeTimeoutMs`, it drops the socket and ioredis reconnects through its
 * retry strategy. Commands in flight on the dropped socket fail (or are resent, on BullMQ's
 * connections). Returns a function that stops the watchdog; it also stops when the client ends.
 */
export function watchRedis(redis: Redis, opts: RedisWatchdogOptions): () => void {
  const pingTimeoutMs = Math.max(MIN_PING_TIMEOUT_MS, opts.pingTimeoutMs);
  let misses = 0;
  let pinging = false;
  let handshakeSince: number | undefined;
  const replace = (reason: string) => {
    misses = 0;
    handshakeSince = undefined;
    opts.logger.warn({ connection: opts.name, reason }, "redis connection unresponsive; replacing it");
    opts.onReplace?.(reason);
    redis.disconnect(true);
  };
  const tick = () => {
    const status = redis.status;
    if (status === "end") {
      clearInterval(timer);
      return;
    }
    if (status === "connect") {
      handshakeSince ??= Date.now();
      if (Date.now() - handshakeSince > opts.handshakeTimeoutMs) replace(`handshake unanswered for ${opts.handshakeTimeoutMs} ms`);
      return;
    }
    handshakeSince = undefined;
    if (status !== "ready" || pinging || opts.ping === false) return;
    pinging = true;
    withTimeout(redis.ping(), pingTimeoutMs, "PING").then(
      () => {
        misses = 0;
      },
      () => {
        misses++;
        if (misses >= REDIS_PING_MISSES && redis.status === "ready") replace(`${misses} PINGs unanswered within ${pingTimeoutMs} ms`);
      },
    ).finally(() => {
      pinging = false;
    });
  };
  const timer = setInterval(tick, REDIS_WATCH_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A Redis client with TCP keep-alive and a watchdog (watchRedis), for every long-lived connection of
 * a process. `options` are ioredis's; keep-alive is added. The watchdog stops when the client is
 * quit or disconnected.
 */
export function createRedisConnection(url: string, options: RedisOptions, watchdog: RedisWatchdogOptions): Redis {
  const redis = new Redis(url, { keepAlive: REDIS_KEEPALIVE_MS, noDelay: true, ...options });
  watchRedis(redis, watchdog);
  return redis;
}
