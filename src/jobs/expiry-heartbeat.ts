import { Gauge, type Registry } from "prom-client";

/**
 * When expiry last completed a run, as this process knows it: its own runs, and the runs of other
 * scheduler processes it read from Redis (each tick runs on one process only). Before any run is
 * known, the process's start counts as the last run, so a scheduler that never sees one becomes
 * overdue one EXPIRY_OVERDUE_SECONDS after it started.
 */
export class ExpiryHeartbeat {
  private lastRunMs: number;

  constructor(
    /** After this many seconds without a completed run, expiry is overdue. */
    readonly overdueSeconds: number,
    now = Date.now(),
  ) {
    this.lastRunMs = now;
  }

  /** Records a completed run (here or, read from Redis, on another process) at `atMs`. */
  completed(atMs: number): void {
    if (atMs > this.lastRunMs) this.lastRunMs = atMs;
  }

  /** The epoch ms of the last completed run known here. */
  get lastRunAt(): number {
    return this.lastRunMs;
  }

  /** Seconds since the last completed run. */
  secondsSinceLastRun(now = Date.now()): number {
    return Math.max(0, (now - this.lastRunMs) / 1000);
  }

  /** A readiness check: rejects while expiry is overdue. */
  check(): Promise<void> {
    const since = this.secondsSinceLastRun();
    if (since <= this.overdueSeconds) return Promise.resolve();
    return Promise.reject(new Error(`overdue: last completed run ${Math.round(since)} s ago (limit ${this.overdueSeconds} s)`));
  }

  /** Exports `triggers_expiry_seconds_since_last_run` on `registry`, computed at each scrape. */
  register(registry: Registry): void {
    const heartbeat = this;
    new Gauge({
      name: "triggers_expiry_seconds_since_last_run",
      help: "Seconds since the last completed expiry run seen by this scheduler (its own, or another's through Redis); since start when none was seen",
      registers: [registry],
      collect() {
        this.set(heartbeat.secondsSinceLastRun());
      },
    });
  }
}
