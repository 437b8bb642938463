/**
 * A poll run now and then every interval, one at a time: the timer never keeps the process alive,
 * a refresh while one runs joins it, and stop waits for the one in progress. The pollers of
 * queue depth and subscription backlog are each one of these around their own query.
 */
export class PeriodicPoll {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private halted = false;

  /** `poll` must never reject. */
  constructor(
    private readonly poll: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** True once stop() was called (until the next start): a poll in progress drops its result. */
  get stopped(): boolean {
    return this.halted;
  }

  /** Polls now and then every interval. */
  start(): void {
    if (this.timer) return;
    this.halted = false;
    const tick = () => {
      void this.refresh().finally(() => {
        if (!this.halted) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Polls once (or joins the poll in progress). */
  refresh(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.poll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops polling; `cancel` (if given) runs before waiting for the poll in progress. */
  async stop(cancel?: () => void): Promise<void> {
    this.halted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    cancel?.();
    await this.running;
  }
}
