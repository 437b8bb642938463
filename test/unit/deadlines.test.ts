import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { deadline, TIME_FACTOR, waitFor, within } from "../helpers/deadlines";

const SCRIPT = join(__dirname, "..", "helpers", "time-factor.js");
/** `node time-factor.js` with TEST_TIME_FACTOR set to `value` (or removed). */
const factorWith = (value: string | undefined): string => {
  const env = { ...process.env };
  delete env.TEST_TIME_FACTOR;
  if (value !== undefined) env.TEST_TIME_FACTOR = value;
  return execFileSync(process.execPath, [SCRIPT], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
};

describe("test deadlines scale with the machine", () => {
  test("TEST_TIME_FACTOR is taken as given (never below 1); without it the measured factor is within [1, 4]", () => {
    expect(factorWith("2.5")).toBe("2.5");
    expect(factorWith("0.5")).toBe("1");
    expect(() => factorWith("fast")).toThrow(/TEST_TIME_FACTOR must be a positive number/);
    const measured = Number(factorWith(undefined));
    expect(measured).toBeGreaterThanOrEqual(1);
    expect(measured).toBeLessThanOrEqual(4);
  });

  test("deadline() multiplies by the run's factor (recorded for the workers in TEST_TIME_FACTOR), raised by the load of the moment up to 4", () => {
    expect(TIME_FACTOR).toBeGreaterThanOrEqual(1);
    expect(String(TIME_FACTOR)).toBe(process.env.TEST_TIME_FACTOR);
    expect(deadline(1000)).toBeGreaterThanOrEqual(Math.round(1000 * TIME_FACTOR));
    expect(deadline(1000)).toBeLessThanOrEqual(4000);
  });

  test("a factor given by hand is used as it is, whatever the load", () => {
    const out = execFileSync(process.execPath, ["-e", "const t=require('./test/helpers/time-factor.js');process.stdout.write(String(t.currentTimeFactor()))"], { env: { ...process.env, TEST_TIME_FACTOR: "2.5", TEST_TIME_FACTOR_MEASURED: "" } }).toString();
    expect(out).toBe("2.5");
  });

  test("waitFor returns the first truthy value, and names what it waited for when the scaled deadline passes", async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : false), { intervalMs: 1 })).resolves.toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 20, intervalMs: 5, what: "the moon" })).rejects.toThrow(`the moon not met within ${deadline(20)} ms`);
  });

  test("within resolves with the promise, or rejects with the message once the scaled deadline passes", async () => {
    await expect(within(Promise.resolve(7), 1000, () => "late")).resolves.toBe(7);
    await expect(within(new Promise(() => undefined), 10, () => "never finished")).rejects.toThrow(`never finished (within ${deadline(10)} ms)`);
  });
});
