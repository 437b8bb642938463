let second = Number.NaN;
let secondPrefix = "";

/**
 * `new Date(ms).toISOString()`, with the date and time up to the second formatted once per
 * second instead of on every call (docs/performance.md). For the whole milliseconds of a clock at or after 1970, the form every received_at
 * and log timestamp takes; any other value is formatted by Date.
 */
export function isoString(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0) return new Date(ms).toISOString();
  const frac = ms % 1000;
  if (ms - frac !== second) {
    second = ms - frac;
    secondPrefix = new Date(second).toISOString().slice(0, -4); // "…T10:00:00." without "000Z"
  }
  return `${secondPrefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}Z`;
}
