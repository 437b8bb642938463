/**
 * The expiry job's pacing controller: it decides how many rows the next DELETE may remove and how
 * long to rest after it, from what it observes of the database, instead of from a tuned constant.
 * It knows nothing of SQL or of what is deleted (see expire-events.ts); the runner hands it one
 * observation per full batch and asks it for the next batch size and rest.
 *
 * Two signals, both relative, so the same bounds hold on a fast machine and a slow one:
 *   - **Own latency**: the ms per row of its batches against a running baseline taken at the
 *     smallest batch size (the first batches, then one batch of that size every few decisions): the
 *     lowest ms per row seen there, which decays upward by `baselineDrift` per baseline batch so a
 *     permanently slower database becomes the new normal. A larger batch costs less per row, so
 *     comparing it with the small-batch baseline errs on the side of not backing off. Batches
 *     slower than `latencyTolerance` × baseline mean someone else is using the database now.
 *   - **Interference**: a trivial probe statement timed on another connection while a batch runs,
 *     against the same probe timed while expiry rests. Its ratio is the slowdown that expiry itself
 *     causes to a concurrent statement. Above `interferenceTolerance`, live traffic suffers.
 *
 * AIMD on the share of time spent deleting (duty) and the batch size: every `window` batches, if
 * either signal's median is over its tolerance, duty and batch size halve (a back-off); otherwise
 * they grow by a fixed step (a speed-up). All within the bounds of PacingBounds.
 *
 * **Deadline floor.** The runner may tell the pacer how fast it must delete to clear what is due in
 * time (setRequiredRate). The duty then never drops below what that rate needs at the cost per row
 * it currently measures on its regular batches, not the small baseline ones (with 25 % headroom),
 * so backing off can slow the drain but not past its deadline; while the floor holds the duty, a
 * back-off does not shrink the batch (smaller batches cost more per row). When even the largest duty is not enough, `deadlineAtRisk` says so, batches
 * grow toward the largest size, and the run reports it.
 */

/** Documented bounds of the controller; nothing it decides falls outside them. */
export interface PacingBounds {
  /** Smallest DELETE the controller asks for (and the size it starts at, to take its baseline). */
  readonly minBatchSize: number;
  /** Largest DELETE (EXPIRY_BATCH_SIZE). */
  readonly maxBatchSize: number;
  /** Least share of wall-clock time spent deleting while a run has work (EXPIRY_MIN_DUTY): the floor that keeps a backlog moving under any load. */
  readonly minDuty: number;
  /** Largest share of wall-clock time spent deleting (EXPIRY_MAX_DUTY), reached only while nothing suffers. */
  readonly maxDuty: number;
  /** Longest rest after one batch, ms (EXPIRY_MAX_REST_MS). */
  readonly maxRestMs: number;
  /** Least rest after one full batch, ms (EXPIRY_PAUSE_MS). */
  readonly minRestMs: number;
  /** Probe slowdown (during a batch / during a rest) above which expiry backs off (EXPIRY_INTERFERENCE_TOLERANCE). */
  readonly interferenceTolerance: number;
  /** Own ms-per-row over the running baseline above which expiry backs off. */
  readonly latencyTolerance: number;
  /** Batches per decision: medians over this many batches, so one noisy batch decides nothing. */
  readonly window: number;
  /** How fast the baseline forgets its minimum, per batch (0.02 = 2 %). */
  readonly baselineDrift: number;
}

/** Defaults for every bound that config does not set. */
export const DEFAULT_PACING: PacingBounds = {
  minBatchSize: 250,
  maxBatchSize: 5000,
  minDuty: 0.02,
  maxDuty: 0.5,
  maxRestMs: 2000,
  minRestMs: 0,
  interferenceTolerance: 1.25,
  latencyTolerance: 1.5,
  window: 3,
  baselineDrift: 0.02,
};

/** What the runner measured around one full batch. */
export interface BatchObservation {
  /** Rows the batch removed. */
  readonly rows: number;
  /** Wall-clock time of the DELETE, ms. */
  readonly ms: number;
  /** Probe latency while the batch ran, ms (undefined: no probe this time). */
  readonly probeBusyMs?: number | undefined;
  /** Probe latency while expiry rested before this batch, ms. */
  readonly probeIdleMs?: number | undefined;
}

/** One decision of the controller, for logs and metrics. */
export type PacingAction = "back-off" | "speed-up";

/** Counters and the current state, reported with each run. */
export interface PacingSnapshot {
  readonly batchSize: number;
  readonly duty: number;
  readonly backoffs: number;
  readonly speedups: number;
  /** Batches observed since the pacer was created. */
  readonly observed: number;
  /** Median probe slowdown of the last decision (1 = none); undefined before the first. */
  readonly interference: number | undefined;
  /** Median own ms-per-row over baseline of the last decision; undefined before the first. */
  readonly slowdown: number | undefined;
  /** Running baseline, ms per row. */
  readonly baselineMsPerRow: number | undefined;
  /** Why the last back-off happened. */
  readonly lastBackoffReason: "interference" | "latency" | undefined;
  /** Duty the deadline needs (0 without one); the duty in force is max(AIMD duty, this), within bounds. */
  readonly floorDuty: number;
  /** The deadline needs more than maxDuty: the drain will finish late at the fastest allowed pace. */
  readonly deadlineAtRisk: boolean;
}

const median = (xs: readonly number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Validates bounds; throws RangeError on nonsense. */
export function checkBounds(b: PacingBounds): PacingBounds {
  const ok =
    Number.isInteger(b.minBatchSize) && b.minBatchSize >= 1 &&
    Number.isInteger(b.maxBatchSize) && b.maxBatchSize >= b.minBatchSize &&
    b.minDuty > 0 && b.minDuty <= b.maxDuty && b.maxDuty <= 1 &&
    b.maxRestMs >= b.minRestMs && b.minRestMs >= 0 &&
    b.interferenceTolerance > 1 && b.latencyTolerance > 1 &&
    Number.isInteger(b.window) && b.window >= 1 && b.baselineDrift >= 0;
  if (!ok) throw new RangeError(`invalid expiry pacing bounds: ${JSON.stringify(b)}`);
  return b;
}

/**
 * The controller. One instance lives as long as the scheduler process, so what it learnt (baseline,
 * duty) carries from one run to the next.
 */
export class ExpiryPacer {
  readonly bounds: PacingBounds;
  private size: number;
  private dutyNow: number;
  private floor = 0;
  private requiredRowsPerMs = 0;
  private recentMsPerRow: number | undefined;
  private decisions = 0;
  private baseline: number | undefined;
  private perRow: number[] = [];
  private busy: number[] = [];
  private idle: number[] = [];
  private counts = { backoffs: 0, speedups: 0, observed: 0 };
  private last: { interference?: number | undefined; slowdown?: number | undefined; reason?: "interference" | "latency" | undefined } = {};
  private readonly listeners: ((action: PacingAction, s: PacingSnapshot) => void)[] = [];

  constructor(bounds: Partial<PacingBounds> = {}) {
    const merged = { ...DEFAULT_PACING, ...bounds };
    this.bounds = checkBounds({ ...merged, minBatchSize: Math.min(merged.minBatchSize, merged.maxBatchSize) });
    // Start small and slow: the first batches take the baseline and disturb nothing; AIMD climbs from there.
    this.size = this.bounds.minBatchSize;
    this.dutyNow = this.bounds.minDuty;
  }

  /** Called on every decision (metrics, logs, tests). */
  onDecision(fn: (action: PacingAction, s: PacingSnapshot) => void): void {
    this.listeners.push(fn);
  }

  /** Rows the next DELETE may remove: the smallest size for the first window and every fourth one (baseline batches). */
  get batchSize(): number {
    return this.baseline === undefined || (this.decisions % 4 === 3 && this.perRow.length === 0) ? this.bounds.minBatchSize : this.size;
  }

  /** Share of time spent deleting now: the AIMD duty, raised to the deadline's floor, within bounds. */
  get duty(): number {
    return Math.min(this.bounds.maxDuty, Math.max(this.dutyNow, this.floor));
  }

  /**
   * The rate the deadline needs, rows per ms (0 or undefined: no deadline). The floor duty follows
   * from the ms per row measured lately.
   */
  setRequiredRate(rowsPerMs: number | undefined): void {
    this.requiredRowsPerMs = rowsPerMs !== undefined && rowsPerMs > 0 ? rowsPerMs : 0;
    this.updateFloor();
  }

  private updateFloor(): void {
    const r = this.requiredRowsPerMs;
    this.floor = r > 0 && this.recentMsPerRow !== undefined ? r * this.recentMsPerRow * 1.25 : 0;
  }

  /** Rest after a full batch that took `batchMs`, ms: keeps deleting at `duty` of wall time, within [minRestMs, maxRestMs]. */
  restAfter(batchMs: number): number {
    const b = this.bounds;
    return Math.min(b.maxRestMs, Math.max(b.minRestMs, batchMs * (1 / this.duty - 1)));
  }

  /** Feeds one full batch; returns the decision when this batch completed a window. */
  observe(o: BatchObservation): PacingAction | undefined {
    if (!(o.rows > 0) || !(o.ms >= 0)) return undefined;
    const b = this.bounds;
    this.counts.observed++;
    const perRow = o.ms / o.rows;
    if (o.rows <= b.minBatchSize) {
      this.baseline = this.baseline === undefined ? perRow : Math.min(perRow, this.baseline * (1 + b.baselineDrift));
    }
    // The floor's cost per row is that of the batches it paces: a baseline batch (the smallest
    // size, taken every few decisions) costs more per row and would raise the floor past need.
    if (this.recentMsPerRow === undefined || o.rows > b.minBatchSize || this.size <= b.minBatchSize) {
      this.recentMsPerRow = this.recentMsPerRow === undefined ? perRow : 0.7 * this.recentMsPerRow + 0.3 * perRow;
    }
    this.updateFloor();
    if (this.baseline === undefined) return undefined;
    this.perRow.push(perRow);
    if (o.probeBusyMs !== undefined && o.probeIdleMs !== undefined) {
      this.busy.push(o.probeBusyMs);
      this.idle.push(o.probeIdleMs);
    }
    if (this.perRow.length < b.window) return undefined;

    const slowdown = median(this.perRow)! / this.baseline;
    const busy = median(this.busy);
    const idle = median(this.idle);
    // A floor on the idle probe keeps a sub-0.1 ms probe's jitter from reading as a large ratio.
    const interference = busy === undefined || idle === undefined ? undefined : busy / Math.max(idle, 0.1);
    this.perRow = [];
    this.busy = [];
    this.idle = [];
    this.decisions++;

    let action: PacingAction;
    let reason: "interference" | "latency" | undefined;
    if (interference !== undefined && interference > b.interferenceTolerance) reason = "interference";
    else if (slowdown > b.latencyTolerance) reason = "latency";
    const grow = () => Math.min(b.maxBatchSize, this.size + Math.ceil((b.maxBatchSize - b.minBatchSize) / 8));
    if (reason) {
      action = "back-off";
      this.counts.backoffs++;
      this.dutyNow = Math.max(b.minDuty, this.dutyNow / 2);
      // While the deadline floor holds the duty, smaller batches would only cost more per row (each
      // statement has a fixed cost) and make the deadline harder: keep the size, or grow it when at risk.
      if (this.floor > b.maxDuty) this.size = grow();
      else if (this.floor < this.dutyNow) this.size = Math.max(b.minBatchSize, Math.floor(this.size / 2));
    } else {
      action = "speed-up";
      this.counts.speedups++;
      this.dutyNow = Math.min(b.maxDuty, this.dutyNow + (b.maxDuty - b.minDuty) / 8);
      this.size = grow();
    }
    this.last = { interference, slowdown, reason: reason ?? this.last.reason };
    const s = this.snapshot();
    for (const fn of this.listeners) fn(action, s);
    return action;
  }

  snapshot(): PacingSnapshot {
    return {
      batchSize: this.size,
      duty: this.duty,
      backoffs: this.counts.backoffs,
      speedups: this.counts.speedups,
      observed: this.counts.observed,
      interference: this.last.interference,
      slowdown: this.last.slowdown,
      baselineMsPerRow: this.baseline,
      lastBackoffReason: this.last.reason,
      floorDuty: this.floor,
      deadlineAtRisk: this.floor > this.bounds.maxDuty,
    };
  }
}
