import { join } from "node:path";
import { tmpdir } from "node:os";

/** Where the shared test services are. Override with the TEST_* variables to point elsewhere. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/triggers_test";
export const TEST_ADMIN_DATABASE_URL = process.env.TEST_ADMIN_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
/** File where global setup records the shared SQS emulator's endpoint and pid. */
export const EMULATOR_STATE_FILE = join(tmpdir(), `triggers-test-emulator-${process.env.JEST_RUN_ID ?? "default"}.json`);
/** The built CLI the tests spawn as real processes. */
export const CLI = join(__dirname, "..", "..", "dist", "src", "cli", "main.js");
/**
 * How much slower than the reference machine this one is (TEST_TIME_FACTOR, else measured: see
 * time-factor.js): bounds on time or CPU a test measures are multiplied by it.
 */
export { TIME_FACTOR as TEST_TIME_FACTOR } from "./deadlines";
