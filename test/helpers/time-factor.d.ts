/** The run's time factor (see time-factor.js): TEST_TIME_FACTOR, else measured once and recorded there. */
export function timeFactor(): number;
/** Median wall time of the calibration loop now, in ms. */
export function measureLoopMs(): number;
/** The loop's median on an idle reference core, in ms. */
export const REFERENCE_MS: number;
/** The factor for a deadline set now: the run's, raised by the current load unless TEST_TIME_FACTOR was set by hand. */
export function currentTimeFactor(): number;
