import { currentTimeFactor, timeFactor } from "./time-factor";

/**
 * Every deadline a test waits for comes from here, scaled by the run's time factor (1 on an idle
 * reference machine, up to 4 on a busy or slow one; TEST_TIME_FACTOR overrides it: see
 * time-factor.js). A deadline bounds how long a test waits for something that should happen; it
 * is not a measurement, so scaling it never weakens what a test asserts.
 */
export const TIME_FACTOR: number = timeFactor();

/**
 * `ms` (the deadline on the reference machine) scaled to this run: what to wait before giving up.
 * It follows the load of the moment too (a suite started beside this one after it measured).
 */
export function deadline(ms: number): number {
  return Math.round(ms * currentTimeFactor());
}

export interface WaitOptions {
  /** Reference deadline in ms, scaled by deadline() (default 5000). */
  readonly timeoutMs?: number;
  /** Pause between attempts, ms (default 25; not scaled). */
  readonly intervalMs?: number;
  /** What is awaited, for the error when the deadline passes. */
  readonly what?: string;
}

/** Polls `fn` until it returns a truthy value (returned) or the scaled deadline passes (throws). */
export async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, opts: WaitOptions = {}): Promise<T> {
  const ms = deadline(opts.timeoutMs ?? 5000);
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`${opts.what ?? "condition"} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}

/** Resolves with `p`, or rejects with `message()` once the scaled deadline passes first. */
export async function within<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  const scaled = deadline(ms);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${message()} (within ${scaled} ms)`)), scaled)))]);
  } finally {
    clearTimeout(timer);
  }
}
