import type { Logger } from "./logger";
import type { Metrics } from "./metrics";
import { PeriodicPoll } from "./periodic-poll";
import { errorMessage } from "../errors";

/** What the poller needs of a queue: SqsQueue.depth (GetQueueAttributes). */
export interface DepthSource {
  depth(signal?: AbortSignal): Promise<{ visible: number; inFlight: number }>;
}

/** Options of a QueueDepthPoller. */
export interface QueueDepthPollerOptions {
  /** The queues to poll, by the value of their `queue` label (e.g. main, dlq). */
  readonly queues: Readonly<Record<string, DepthSource | undefined>>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Time between polls, ms (default 15 000: 4 GetQueueAttributes calls a minute per queue and process). */
  readonly intervalMs?: number;
  /** Longest one poll may take, ms (default 5 000). */
  readonly timeoutMs?: number;
}

/**
 * Keeps triggers_queue_messages{queue,state} current by polling SQS at a bounded rate, so a
 * Prometheus scrape never waits on SQS and scrapes at any rate cost no extra API calls.
 * A failed poll keeps the last values and is logged at most once a minute.
 */
export class QueueDepthPoller {
  private abort: AbortController | undefined;
  private lastWarning = 0;
  private readonly timeoutMs: number;
  private readonly periodic: PeriodicPoll;

  constructor(private readonly opts: QueueDepthPollerOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.periodic = new PeriodicPoll(() => this.poll(), opts.intervalMs ?? 15_000);
  }

  /** Polls now and then every interval; the timer never keeps the process alive. */
  start(): this {
    this.periodic.start();
    return this;
  }

  /** Polls every queue once and updates the gauges; never rejects. */
  refresh(): Promise<void> {
    return this.periodic.refresh();
  }

  /** Stops polling and cancels a poll in progress. */
  stop(): Promise<void> {
    return this.periodic.stop(() => this.abort?.abort());
  }

  private get stopped(): boolean {
    return this.periodic.stopped;
  }

  private async poll(): Promise<void> {
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      await Promise.all(
        Object.entries(this.opts.queues).map(async ([name, queue]) => {
          if (!queue) return;
          try {
            const { visible, inFlight } = await queue.depth(abort.signal);
            this.opts.metrics.queueDepth.set({ queue: name, state: "visible" }, visible);
            this.opts.metrics.queueDepth.set({ queue: name, state: "in_flight" }, inFlight);
          } catch (err) {
            if (this.stopped) return;
            if (Date.now() - this.lastWarning > 60_000) {
              this.lastWarning = Date.now();
              this.opts.logger.warn({ queue: name, err: errorMessage(err) }, "queue depth poll failed");
            }
          }
        }),
      );
    } finally {
      clearTimeout(timer);
    }
  }
}
