import { EventEmitter } from "node:events";
import type { ClientOptions } from "./http";
import { sleep, TriggersError } from "./http";
import { TriggersClient, type InboxEvent, type InboxFilter } from "./producer";

/** Where a consumer error happened. */
export type ConsumerErrorKind = "lease" | "ack" | "nack" | "extend";

/** An error of the consumer's own calls (not of the handler): which call, for which event, and the API error. */
export class ConsumerError extends Error {
  constructor(
    readonly kind: ConsumerErrorKind,
    override readonly cause: unknown,
    readonly event?: InboxEvent,
  ) {
    super(`${kind} failed${event ? ` for ${event.id}` : ""}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "ConsumerError";
  }

  /** The API's error code when there was an answer (e.g. lease_expired), else network_error / timeout. */
  get code(): string | undefined {
    return this.cause instanceof TriggersError ? this.cause.code : undefined;
  }
}

/** The events a Consumer emits, with their arguments. */
export interface ConsumerEvents {
  started: [];
  /** Every running handler finished and its ack or nack was sent. */
  stopped: [];
  /** A lease request answered with nothing (the next one waits for the empty-poll backoff when the answer came early). */
  empty: [];
  message_received: [event: InboxEvent];
  /** The handler resolved and the ack was accepted. */
  message_processed: [event: InboxEvent];
  /** The handler threw (or rejected); the event was nacked with a backoff delay. */
  processing_error: [error: unknown, event: InboxEvent];
  /** A lease, ack, nack or extend call failed. Only emitted when someone listens (no unhandled 'error' crash). */
  error: [error: ConsumerError];
  /** A lease was lost while the handler ran or before its ack (e.g. it expired): the event may be redelivered. */
  lease_lost: [event: InboxEvent];
}

export interface ConsumerOptions extends ClientOptions {
  /** Handles one event; resolve to ack it, throw to nack it. Give this or handleMessageBatch. */
  readonly handleMessage?: (event: InboxEvent) => Promise<unknown>;
  /** Handles the events of one lease together; resolve to ack all, throw to nack all. */
  readonly handleMessageBatch?: (events: InboxEvent[]) => Promise<unknown>;
  /** Events per lease request (1–500). Default 10. */
  readonly batchSize?: number;
  /** Handlers running at once: events (handleMessage) or batches (handleMessageBatch). Default 10. */
  readonly concurrency?: number;
  /** Long-poll wait, seconds (0–20). Default 20. */
  readonly waitSeconds?: number;
  /** Lease length, seconds (1–3600). Default 30. */
  readonly visibilityTimeout?: number;
  /** How often running handlers' leases are extended (to visibilityTimeout from then), seconds. Default visibilityTimeout / 3. */
  readonly heartbeatIntervalSeconds?: number;
  /** Only events matching these filters. */
  readonly filter?: InboxFilter;
  /** The subscription to consume (leases, acks, nacks and extends all name it). Default the API's, `default`. */
  readonly subscription?: string;
  /**
   * First pause after an empty answer that came back before its wait was over (always, with
   * waitSeconds 0), ms; doubles per empty answer in a row up to emptyPollBackoffMaxMs, with jitter
   * (a pause is between half and all of the step). Default 100.
   */
  readonly emptyPollBackoffMs?: number;
  /** Longest pause between empty polls, ms. Default 5000. */
  readonly emptyPollBackoffMaxMs?: number;
  /** Nack delay, seconds, for a failed delivery. Default min(2^(delivery_count-1), 300): 1 s, 2 s, 4 s, … */
  readonly nackDelaySeconds?: (event: InboxEvent, error: unknown) => number;
  /** Pause after a failed lease call, ms (doubling to 30 s while it keeps failing). Default 1000. */
  readonly pollErrorBackoffMs?: number;
  /** Acks of finished events are sent together: at most this many per request. Default 100. */
  readonly ackBatchSize?: number;
}

/** Default nack backoff: 1 s, 2 s, 4 s, … up to 5 min. */
export const defaultNackDelay = (event: InboxEvent): number => Math.min(2 ** Math.max(0, event.delivery_count - 1), 300);

interface PendingAck {
  readonly event: InboxEvent;
  readonly resolve: (ok: boolean) => void;
}

export interface Consumer {
  on<K extends keyof ConsumerEvents>(event: K, listener: (...args: ConsumerEvents[K]) => void): this;
  once<K extends keyof ConsumerEvents>(event: K, listener: (...args: ConsumerEvents[K]) => void): this;
  off<K extends keyof ConsumerEvents>(event: K, listener: (...args: ConsumerEvents[K]) => void): this;
  emit<K extends keyof ConsumerEvents>(event: K, ...args: ConsumerEvents[K]): boolean;
}

/**
 * Consumes a tenant's inbox in the manner of bbc/sqs-consumer: long-polls GET /inbox, runs the
 * handler per event (or per leased batch) with bounded concurrency, extends the leases of running
 * handlers (heartbeat), acks when the handler resolves (lease-bound, batched) and nacks with a
 * backoff delay when it throws. stop() stops polling, waits for running handlers and their acks,
 * then emits `stopped`.
 */
export class Consumer extends EventEmitter {
  readonly client: TriggersClient;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly waitSeconds: number;
  private readonly visibilityTimeout: number;
  private readonly heartbeatMs: number;
  private readonly ackBatchSize: number;
  private readonly emptyBackoffMs: number;
  private readonly emptyBackoffMaxMs: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();
  /** Handlers (events or batches) running. */
  private active = 0;
  private readonly work = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;
  private ackQueue: PendingAck[] = [];
  private ackFlushing: Promise<void> | undefined;

  constructor(private readonly opts: ConsumerOptions) {
    super();
    if (!opts.handleMessage === !opts.handleMessageBatch) throw new TypeError("give exactly one of handleMessage and handleMessageBatch");
    this.client = new TriggersClient(opts);
    this.batchSize = opts.batchSize ?? 10;
    this.concurrency = opts.concurrency ?? 10;
    this.waitSeconds = opts.waitSeconds ?? 20;
    this.visibilityTimeout = opts.visibilityTimeout ?? 30;
    this.heartbeatMs = (opts.heartbeatIntervalSeconds ?? this.visibilityTimeout / 3) * 1000;
    this.ackBatchSize = opts.ackBatchSize ?? 100;
    this.emptyBackoffMs = opts.emptyPollBackoffMs ?? 100;
    this.emptyBackoffMaxMs = opts.emptyPollBackoffMaxMs ?? 5000;
    if (!(this.batchSize >= 1 && this.batchSize <= 500)) throw new RangeError("batchSize must be 1–500");
    if (!(this.concurrency >= 1)) throw new RangeError("concurrency must be at least 1");
    if (!(this.waitSeconds >= 0 && this.waitSeconds <= 20)) throw new RangeError("waitSeconds must be 0–20");
    if (!(this.emptyBackoffMs > 0 && this.emptyBackoffMaxMs >= this.emptyBackoffMs)) throw new RangeError("emptyPollBackoffMs must be positive and at most emptyPollBackoffMaxMs");
    if (!(this.heartbeatMs > 0 && this.heartbeatMs < this.visibilityTimeout * 1000)) throw new RangeError("heartbeatIntervalSeconds must be shorter than visibilityTimeout");
  }

  /** True between start() and stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.active;
  }

  start(): this {
    if (this.running) return this;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.poll();
    this.emit("started");
    return this;
  }

  /**
   * Stops polling (a waiting long poll is abandoned, so the server leases nothing for it), waits for
   * running handlers and their acks/nacks, then emits `stopped`. Handlers still running after
   * `timeoutMs` are left to finish on their own; their leases then expire and the events are redelivered.
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    this.slotFreed?.();
    const done = (async () => {
      await this.loop;
      while (this.work.size > 0) await Promise.allSettled([...this.work]);
      while (this.ackFlushing) await this.ackFlushing;
    })();
    if (opts.timeoutMs === undefined) await done;
    else await Promise.race([done, new Promise((r) => setTimeout(r, opts.timeoutMs).unref())]);
    this.emit("stopped");
  }

  private report(err: ConsumerError): void {
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  /** Waits `ms` unless stop() comes first. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, this.abort.signal).catch(() => undefined);
  }

  private async poll(): Promise<void> {
    let backoff = 0;
    /** The current step of the empty-poll backoff, ms (0: the last answer had events or used its whole wait). */
    let idle = 0;
    while (this.running) {
      if (this.active >= this.concurrency) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = undefined;
        continue;
      }
      const batch = this.opts.handleMessageBatch !== undefined;
      const limit = batch ? this.batchSize : Math.min(this.batchSize, this.concurrency - this.active);
      let events: InboxEvent[];
      const askedAt = Date.now();
      try {
        ({ data: events } = await this.client.lease({
          ...this.opts.filter,
          subscription: this.opts.subscription,
          limit,
          waitSeconds: this.waitSeconds,
          visibilityTimeout: this.visibilityTimeout,
          signal: this.abort.signal,
        }));
        backoff = 0;
      } catch (err) {
        if (!this.running) break;
        this.report(new ConsumerError("lease", err));
        backoff = Math.min(backoff === 0 ? (this.opts.pollErrorBackoffMs ?? 1000) : backoff * 2, 30_000);
        await this.pause(backoff);
        continue;
      }
      if (events.length === 0) {
        this.emit("empty");
        // A long poll that used (nearly) its whole wait did the waiting on the server: ask again at
        // once. An empty answer that came early (waitSeconds 0, or a server answering early, e.g.
        // while it shuts down) is backed off, so an idle consumer does not busy-poll.
        const waitedMs = Date.now() - askedAt;
        if (this.waitSeconds > 0 && waitedMs >= this.waitSeconds * 900) idle = 0;
        else {
          idle = idle === 0 ? this.emptyBackoffMs : Math.min(idle * 2, this.emptyBackoffMaxMs);
          await this.pause(idle / 2 + (Math.random() * idle) / 2);
        }
        continue;
      }
      idle = 0;
      if (batch) this.track(this.runBatch(events));
      else for (const e of events) this.track(this.runOne(e));
    }
  }

  private track(p: Promise<void>): void {
    this.active++;
    const tracked = p.finally(() => {
      this.active--;
      this.work.delete(tracked);
      this.slotFreed?.();
    });
    this.work.add(tracked);
  }

  private async runOne(event: InboxEvent): Promise<void> {
    await this.runHandler([event], () => this.opts.handleMessage!(event));
  }

  private async runBatch(events: InboxEvent[]): Promise<void> {
    await this.runHandler(events, () => this.opts.handleMessageBatch!(events));
  }

  private async runHandler(events: InboxEvent[], handler: () => Promise<unknown>): Promise<void> {
    for (const e of events) this.emit("message_received", e);
    const lost = new Set<string>();
    let settled = false;
    const beat = setInterval(() => {
      for (const e of events) {
        if (lost.has(e.id)) continue;
        this.client.extend(e.id, e.lease_id, this.visibilityTimeout, { subscription: this.opts.subscription }).catch((err: unknown) => {
          // An extend that crossed its own ack or nack on the wire is refused harmlessly.
          if (settled) return;
          if (err instanceof TriggersError && err.status === 409) {
            if (!lost.has(e.id)) {
              lost.add(e.id);
              this.emit("lease_lost", e);
            }
          } else this.report(new ConsumerError("extend", err, e));
        });
      }
    }, this.heartbeatMs);
    // The heartbeat runs until the ack or nack is answered, so a slow ack cannot lose the lease.
    try {
      let failure: { error: unknown } | undefined;
      try {
        await handler();
      } catch (error) {
        failure = { error };
      }
      if (failure) {
        for (const e of events) this.emit("processing_error", failure.error, e);
        await Promise.all(events.map((e) => this.nack(e, failure!.error)));
        return;
      }
      const acked = await Promise.all(events.map((e) => this.enqueueAck(e)));
      events.forEach((e, i) => {
        if (acked[i]) this.emit("message_processed", e);
      });
    } finally {
      settled = true;
      clearInterval(beat);
    }
  }

  private async nack(event: InboxEvent, error: unknown): Promise<void> {
    const delay = Math.max(0, Math.round((this.opts.nackDelaySeconds ?? defaultNackDelay)(event, error)));
    try {
      await this.client.nack(event.id, event.lease_id, delay, { subscription: this.opts.subscription });
    } catch (err) {
      if (err instanceof TriggersError && err.code === "lease_expired") this.emit("lease_lost", event);
      else this.report(new ConsumerError("nack", err, event));
    }
  }

  /** Queues a lease-bound ack; acks are sent together (up to ackBatchSize per request). Resolves true when acknowledged. */
  private enqueueAck(event: InboxEvent): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.ackQueue.push({ event, resolve });
      if (!this.ackFlushing) this.ackFlushing = this.flushAcks();
    });
  }

  private async flushAcks(): Promise<void> {
    // Acks queued while a request is in flight wait for the next one: one request at a time, no timers.
    await Promise.resolve(); // let the acks of handlers that finished in this turn join the batch
    while (this.ackQueue.length > 0) {
      const batch = this.ackQueue.splice(0, this.ackBatchSize);
      try {
        const results = await this.client.ackLeases(
          batch.map((a) => ({ id: a.event.id, lease_id: a.event.lease_id })),
          { subscription: this.opts.subscription },
        );
        batch.forEach((a, i) => {
          const status = results[i]?.status;
          if (status === "acknowledged") a.resolve(true);
          else {
            if (status === "lease_expired") this.emit("lease_lost", a.event);
            else this.report(new ConsumerError("ack", new TriggersError(`ack answered ${status}`, 200, status ?? "unknown"), a.event));
            a.resolve(false);
          }
        });
      } catch (err) {
        for (const a of batch) {
          this.report(new ConsumerError("ack", err, a.event));
          a.resolve(false);
        }
      }
    }
    this.ackFlushing = undefined;
  }
}
