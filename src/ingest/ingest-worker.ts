import { setTimeout as sleep } from "node:timers/promises";
import { setMaxListeners } from "node:events";
import type { PrismaClient } from "../generated/prisma/client";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { ReceivedMessage, SqsQueue } from "../queue/sqs-queue";
import { purgeDeletedSubscriptions } from "../jobs/purge-subscriptions";
import { GroupCommit } from "./group-commit";
import { decodeMessage, storeMessages, type StoreMessagesFn } from "./store-messages";
import { errorMessage } from "../errors";

export interface IngestWorkerOptions {
  /** Concurrent long-poll receivers. */
  readonly receivers: number;
  /** Long-poll wait, seconds (0–20). */
  readonly waitSeconds: number;
  /** Visibility timeout of received messages, seconds: longer than one insert can take. */
  readonly visibilitySeconds: number;
  /** Pause between purges of deleted subscriptions, ms (default 1000). */
  readonly purgeIntervalMs?: number;
  /** Deliveries per purge statement (default 1000). */
  readonly purgeBatchSize?: number;
  /** Wall-clock budget of one purge run, ms (default 2000). */
  readonly purgeBudgetMs?: number;
}

export interface IngestWorkerDeps {
  readonly prisma: PrismaClient;
  readonly queue: SqsQueue;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The store step (default storeMessages); tests pass one that fails. */
  readonly store?: StoreMessagesFn;
}

/**
 * Drains SQS into Postgres: the receive loop. Receivers long-poll up to 10 messages each (a
 * message carries one event or several) and hand them to the group-commit buffer
 * (group-commit.ts), which stores them with the store step (store-messages.ts) and deletes each
 * message from SQS only after the statement holding all its events committed. A receiver waits
 * for its messages' commit before it receives again, so a slow or unreachable database slows
 * receiving down instead of piling messages up in memory.
 *
 * Alongside, it purges deleted subscriptions (src/jobs/purge-subscriptions.ts): DELETE
 * /subscriptions/{name} only marks one, and this removes its deliveries in bounded batches. Every
 * worker process does (the steps are safe to run concurrently), so it also runs in `triggers start`.
 *
 * Built by the worker role (src/roles/worker.ts).
 */
export class IngestWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private purging: Promise<void> | undefined;
  private readonly commits: GroupCommit;

  constructor(
    private readonly deps: IngestWorkerDeps,
    private readonly opts: IngestWorkerOptions,
  ) {
    this.commits = new GroupCommit({ ...deps, store: deps.store ?? storeMessages }, { visibilitySeconds: opts.visibilitySeconds });
  }

  start(): void {
    if (this.loops.length > 0) return;
    // Every receiver's long poll listens on the one shutdown signal.
    setMaxListeners(this.opts.receivers + 10, this.abort.signal);
    for (let i = 0; i < this.opts.receivers; i++) this.loops.push(this.receiveLoop(i));
    this.purging = this.purgeLoop();
  }

  /** Stops receiving, finishes the batches in hand (insert and delete), and resolves when every receiver has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.commits.stopRetrying();
    this.abort.abort(); // ends pending long polls now; messages they would have returned stay in SQS
    await Promise.all(this.loops);
    this.loops = [];
    await this.purging;
    this.purging = undefined;
    await this.commits.drain();
  }

  /** Purges deleted subscriptions every purgeIntervalMs until stopped; a failed run is logged and retried next time. */
  private async purgeLoop(): Promise<void> {
    const interval = this.opts.purgeIntervalMs ?? 1000;
    while (!this.stopping) {
      try {
        const done = await purgeDeletedSubscriptions(this.deps, { batchSize: this.opts.purgeBatchSize ?? 1000, timeBudgetMs: this.opts.purgeBudgetMs ?? 2000 });
        if (done.deliveries > 0 || done.subscriptions > 0) this.deps.logger.info(done, "purged deleted subscriptions");
      } catch (err) {
        this.deps.metrics.workerErrors.inc({ stage: "purge" });
        this.deps.logger.warn({ err: errorMessage(err) }, "purge of deleted subscriptions failed; retrying later");
      }
      await sleep(interval, undefined, { signal: this.abort.signal }).catch(() => undefined);
    }
  }

  private async receiveLoop(index: number): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      let messages: ReceivedMessage[];
      try {
        messages = await this.deps.queue.receive({
          max: 10,
          waitSeconds: this.opts.waitSeconds,
          visibilitySeconds: this.opts.visibilitySeconds,
          signal: this.abort.signal,
        });
      } catch (err) {
        if (this.stopping) break;
        this.deps.metrics.workerErrors.inc({ stage: "receive" });
        backoff = Math.min(backoff === 0 ? 100 : backoff * 2, 5000);
        this.deps.logger.warn({ receiver: index, err: errorMessage(err), backoffMs: backoff }, "receive failed");
        await sleep(backoff);
        continue;
      }
      if (messages.length === 0) continue;
      try {
        await this.commits.commit(messages.map(decodeMessage));
        backoff = 0;
      } catch (err) {
        // Only a commit that failed while stopping is handed back, and the group commit counted
        // that failure already (triggers_worker_errors_total{stage="insert"}): logged, not counted again.
        backoff = Math.min(backoff === 0 ? 100 : backoff * 2, 5000);
        this.deps.logger.warn({ receiver: index, err: errorMessage(err), messages: messages.length, backoffMs: backoff }, "insert failed; batch left for redelivery");
        if (!this.stopping) await sleep(backoff);
      }
    }
  }
}
