/**
 * How much slower than the reference machine this one runs now: the factor every test deadline is
 * multiplied by (test/helpers/deadlines.ts, Jest's testTimeout in jest.config.js).
 *   TEST_TIME_FACTOR=<n>  use n (at least 1) and measure nothing;
 *   otherwise             the larger of two estimates, clamped to [1, 4]: a fixed CPU loop (the
 *                         median of 7 runs) timed against what it takes on an idle core of the
 *                         reference machine (2 cores, where the suite's deadlines were set), which
 *                         sees a slower CPU and the competition of this instant; and the last
 *                         minute's load average per core, which sees sustained competition a
 *                         sub-second sample can miss. A machine shared with other work, or a slower
 *                         one, gets proportionally longer deadlines, never shorter ones.
 * The first caller in a run measures and records the result in process.env.TEST_TIME_FACTOR, so
 * Jest's workers (and test/run.sh's passes) inherit one value instead of each measuring its own.
 * Plain JavaScript: jest.config.js loads it before any transform exists.
 * `node test/helpers/time-factor.js` prints the factor.
 */
"use strict";
const { availableParallelism, loadavg } = require("node:os");

/** Iterations of the loop, and its median duration on an idle reference core, in ms. */
const ITERATIONS = 1e7;
const REFERENCE_MS = 45;
const RUNS = 7;
const MIN = 1;
const MAX = 4;

function spin(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x * 31 + i) | 0;
  return x;
}

/** Median wall time of the loop now, in ms. */
function measureLoopMs() {
  spin(ITERATIONS / 10); // warm the JIT up first
  const runs = [];
  for (let k = 0; k < RUNS; k++) {
    const t = process.hrtime.bigint();
    spin(ITERATIONS);
    runs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(RUNS / 2)];
}

/** The run's time factor: TEST_TIME_FACTOR when set, else measured once and recorded there. */
function timeFactor() {
  const raw = process.env.TEST_TIME_FACTOR;
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`TEST_TIME_FACTOR must be a positive number, not ${JSON.stringify(raw)}`);
    return Math.max(MIN, n);
  }
  const perCore = loadavg()[0] / availableParallelism();
  const measured = Math.min(MAX, Math.max(MIN, measureLoopMs() / REFERENCE_MS, perCore));
  const factor = Math.round(measured * 10) / 10;
  process.env.TEST_TIME_FACTOR = String(factor);
  process.env.TEST_TIME_FACTOR_MEASURED = "1";
  return factor;
}

/**
 * The factor for a deadline set now: the run's factor, raised to the last minute's load average per
 * core when that is higher (another suite started beside this one after it measured), unless
 * TEST_TIME_FACTOR was given by hand. Clamped to [1, 4] like the measurement.
 */
function currentTimeFactor() {
  const base = timeFactor();
  if (process.env.TEST_TIME_FACTOR_MEASURED !== "1") return base;
  const perCore = Math.round((loadavg()[0] / availableParallelism()) * 10) / 10;
  return Math.min(MAX, Math.max(base, perCore));
}

module.exports = { timeFactor, currentTimeFactor, measureLoopMs, REFERENCE_MS };

if (require.main === module) process.stdout.write(`${timeFactor()}\n`);
