/**
 * Three projects in one run (`npm test`):
 *   postgres  every integration file, on the local Postgres server (each harness on its own schema),
 *             and the fault tests (separate processes sharing one database through DATABASE_URL)
 *   pglite    every integration file again, on embedded PGlite (each harness on a fresh data dir,
 *             migrated in the process that serves it, as `npm start` does)
 *   unit      unit, Terraform and smoke tests, which pick their own parts
 *   alone     tests that read the machine's own load (expiry pacing), on Postgres; `npm test`
 *             (test/run.sh) runs them after the others, one at a time, with nothing beside them
 * A file under test/integration runs on both stores without saying so; a test that is
 * Postgres-only by nature says why with onlyOn("postgres", reason) from test/helpers/store.ts.
 * Run one project with `npx jest --selectProjects pglite <files>`.
 */
// One id per `jest` run, inherited by its workers: the shared emulator's state file
// (test/helpers/env.ts) is this run's own, so concurrent runs on one machine never read each other's.
process.env.JEST_RUN_ID ??= `${process.pid}-${Date.now()}`;
// Deadlines scale with how busy or slow this machine is (test/helpers/time-factor.js): measured
// once here, recorded in TEST_TIME_FACTOR for the workers, which scale their own waits by it.
const { timeFactor } = require("./test/helpers/time-factor.js");
/** A test's (and a hook's) deadline on the reference machine, ms. */
const TEST_TIMEOUT_MS = 30000;

const shared = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "commonjs" } }],
  },
  // PGlite is loaded by Node's own require, outside Jest's sandbox: see the file for why.
  moduleNameMapper: { "^@electric-sql/pglite$": "<rootDir>/test/helpers/pglite-native.js" },
};
// The browser tests (test/browser) run on both stores like the integration tests.
const integration = ["<rootDir>/test/integration/**/*.test.ts", "<rootDir>/test/browser/**/*.test.ts"];

/** @type {import('jest').Config} */
module.exports = {
  globalSetup: "<rootDir>/test/helpers/global-setup.ts",
  globalTeardown: "<rootDir>/test/helpers/global-teardown.ts",
  testTimeout: Math.round(TEST_TIMEOUT_MS * timeFactor()),
  // Integration tests share one Postgres server and one SQS emulator, each test file on its own schema/queue.
  maxWorkers: 2,
  projects: [
    { ...shared, displayName: "postgres", globals: { TEST_STORE: "postgres" }, testMatch: [...integration, "<rootDir>/test/faults/**/*.test.ts"] },
    {
      ...shared,
      displayName: "pglite",
      globals: { TEST_STORE: "pglite" },
      testMatch: integration,
      // Jest's soft clean-up of globals between files trips over a global the embedded stack sets
      // ("set_message ... accessed after it was soft deleted", then a stack overflow in jest-util).
      testEnvironmentOptions: { globalsCleanup: "off" },
      // One initdb per run, copied by each harness: see the file.
      globalSetup: "<rootDir>/test/helpers/pglite-setup.ts",
      globalTeardown: "<rootDir>/test/helpers/pglite-teardown.ts",
    },
    { ...shared, displayName: "unit", testMatch: ["<rootDir>/test/{unit,terraform,smoke}/**/*.test.ts"] },
    { ...shared, displayName: "alone", globals: { TEST_STORE: "postgres" }, testMatch: ["<rootDir>/test/alone/**/*.test.ts"] },
  ],
};
