/**
 * Which database store this test run uses. The integration suite runs twice (see jest.config.js):
 * once per store, each as its own Jest project whose `globals.TEST_STORE` names the store, so every
 * file under test/integration runs on both without saying anything. Outside those projects (a file
 * run directly, or the single-run projects), TEST_STORE from the environment decides, default
 * "postgres".
 *
 *   postgres  the local Postgres server, each harness on its own schema (DATABASE_URL ?schema=)
 *   pglite    embedded PGlite, each harness on a fresh data dir, as a newcomer's `npm start`
 */
export type TestStore = "postgres" | "pglite";

export const TEST_STORES: readonly TestStore[] = ["postgres", "pglite"];

export function currentStore(): TestStore {
  const fromProject = (globalThis as { TEST_STORE?: unknown }).TEST_STORE;
  const raw = typeof fromProject === "string" ? fromProject : process.env.TEST_STORE ?? "postgres";
  if (raw !== "postgres" && raw !== "pglite") throw new Error(`TEST_STORE must be "postgres" or "pglite", not ${JSON.stringify(raw)}`);
  return raw;
}

/**
 * Declares tests that only make sense on one store, with the reason (shown in the test name, so a
 * skipped run says why):
 *
 *   onlyOn("postgres", "two processes share one database through DATABASE_URL").describe("...", () => { ... });
 *   onlyOn("postgres", "reads the planner's choice of index").test("...", async () => { ... });
 *
 * On the other store the tests are skipped, not deleted: Jest lists them as skipped.
 */
export function onlyOn(store: TestStore, reason: string): { describe: jest.Describe; test: jest.It } {
  if (!reason.trim()) throw new Error("onlyOn needs a reason");
  const here = currentStore() === store;
  const label = (name: string) => `${name} [${store} only: ${reason}]`;
  const d = (here ? describe : describe.skip) as jest.Describe;
  const t = (here ? test : test.skip) as jest.It;
  const describeFn = ((name: string, fn: () => void) => d(label(name), fn)) as unknown as jest.Describe;
  const testFn = ((name: string, fn: jest.ProvidesCallback, timeout?: number) => t(label(name), fn, timeout)) as unknown as jest.It;
  return { describe: describeFn, test: testFn };
}
