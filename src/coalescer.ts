/**
 * One coalescer: gathers items that arrive one by one and hands them on in batches, flushing on
 * size or after a linger, with a bounded number of batches in flight, and drains on shutdown. The
 * SQS send batcher, the accepted-receipts writer and the log destination are instances of it.
 *
 * When a batch starts: as soon as one is full (`fits` refuses the next item); otherwise, while
 * nothing is in flight, at the end of the current event-loop turn (`eager`, no added latency when
 * quiet) or after `lingerMs`; while batches are in flight, after `lingerMs` (items gather to share
 * the next batch). Never more than `maxInFlight` at once, and never sooner than `minIntervalMs`
 * after the previous one started; full batches wait for a slot in arrival order.
 */
export interface CoalescerOptions<T> {
  /** Hands on one batch. A rejection is the flush's own to report: the coalescer only waits for it. */
  readonly flush: (items: T[]) => Promise<void> | void;
  /** Whether `next` still fits in `batch` (default: always). A refused item starts a new batch and the full one goes. */
  readonly fits?: (batch: readonly T[], next: T) => boolean;
  /** How long items wait for company, ms. */
  readonly lingerMs: number;
  /** While nothing is in flight, flush at the end of the turn instead of after lingerMs (default true). */
  readonly eager?: boolean;
  /** Batches in flight at most (default unbounded). */
  readonly maxInFlight?: number;
  /** Least time between the starts of two batches, ms (default 0). */
  readonly minIntervalMs?: number;
  /** Unreferenced timers: pending items never keep the process alive (default false). */
  readonly unref?: boolean;
}

export class Coalescer<T> {
  /** The batch being filled. */
  private current: T[] = [];
  /** Full batches waiting for a slot. */
  private readonly ready: T[][] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;
  private readonly maxInFlight: number;

  constructor(private readonly opts: CoalescerOptions<T>) {
    this.maxInFlight = opts.maxInFlight ?? Number.POSITIVE_INFINITY;
  }

  /** Adds an item to the batch being filled. */
  add(item: T): void {
    if (this.current.length > 0 && this.opts.fits && !this.opts.fits(this.current, item)) {
      this.ready.push(this.current);
      this.current = [];
      this.current.push(item);
      this.startReady();
      this.schedule();
      return;
    }
    this.current.push(item);
    this.schedule();
  }

  /** Items not handed on yet (the batch being filled and full ones waiting for a slot). */
  *pending(): Iterable<T> {
    for (const b of this.ready) yield* b;
    yield* this.current;
  }

  /** Batches in flight now. */
  get flying(): number {
    return this.inFlight.size;
  }

  /**
   * Closes the batch being filled and starts what the in-flight bound allows, now (synchronously:
   * a synchronous flush has run when this returns).
   */
  flushNow(): void {
    this.clearTimers();
    if (this.current.length > 0) {
      this.ready.push(this.current);
      this.current = [];
    }
    this.startReady(true);
  }

  /** Hands on everything pending and waits until every batch has finished, including what arrives meanwhile. */
  async drain(): Promise<void> {
    for (;;) {
      this.flushNow();
      if (this.inFlight.size === 0 && this.ready.length === 0 && this.current.length === 0) return;
      await Promise.allSettled([...this.inFlight]);
    }
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.immediate !== undefined) return;
    if (this.current.length === 0 && this.ready.length === 0) return;
    const sinceLast = performance.now() - this.lastStart;
    const interval = this.opts.minIntervalMs ?? 0;
    let wait = this.inFlight.size === 0 && this.opts.eager !== false ? 0 : this.opts.lingerMs;
    if (sinceLast < interval) wait = Math.max(wait, interval - sinceLast);
    if (wait <= 0) this.immediate = setImmediate(this.onTimer);
    else {
      this.timer = setTimeout(this.onTimer, wait);
      if (this.opts.unref) this.timer.unref();
    }
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    if (this.inFlight.size >= this.maxInFlight) return; // the batch in flight schedules on its way out
    this.flushNow();
  };

  /** Starts ready batches while slots are free; `now` ignores the least interval (a flush asked for explicitly). */
  private startReady(now = false): void {
    while (this.ready.length > 0 && this.inFlight.size < this.maxInFlight) {
      if (!now && performance.now() - this.lastStart < (this.opts.minIntervalMs ?? 0)) return;
      const batch = this.ready.shift()!;
      this.lastStart = performance.now();
      let result: Promise<void> | void;
      try {
        result = this.opts.flush(batch);
      } catch {
        result = undefined; // a flush that threw at once reported its own failure
      }
      if (!result) continue;
      const tracked: Promise<void> = result
        .catch(() => undefined)
        .finally(() => {
          this.inFlight.delete(tracked);
          this.startReady();
          this.schedule();
        });
      this.inFlight.add(tracked);
    }
  }
}

/** Something holding work to hand on at shutdown: a coalescer, or a service built on one. */
export interface Drainable {
  drain(): Promise<void>;
}

/** Drains each in order (every one, even after a failure); throws the first failure at the end. */
export async function drainAll(list: readonly Drainable[]): Promise<void> {
  let failure: { err: unknown } | undefined;
  for (const d of list) {
    try {
      await d.drain();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure) throw failure.err;
}
