import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../src/config";
import { buildContainer, type Container } from "../../src/container";
import type { RunningApi } from "../../src/api/server";
import type { IngestWorker } from "../../src/ingest/ingest-worker";
import { startApiRole } from "../../src/roles/api";
import { startIngestWorker } from "../../src/roles/worker";
import { createLogger } from "../../src/observability/logger";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { createApiKey, SCOPES, type Scope } from "../../src/store/api-keys";
import { connectPostgres, openEmbedded, type Database } from "../../src/store/database";
import { EMULATOR_STATE_FILE, TEST_DATABASE_URL, TEST_REDIS_URL } from "./env";
import { validatorAt } from "./openapi-validator";
import { createSchema } from "../../src/dev/local-services";
import { currentStore, type TestStore } from "./store";
import { deadline, waitFor } from "./deadlines";

export { currentStore, onlyOn, type TestStore } from "./store";

/** The shared emulator's endpoint, recorded by global setup. */
export function sqsEndpoint(): string {
  return (JSON.parse(readFileSync(EMULATOR_STATE_FILE, "utf8")) as { endpoint: string }).endpoint;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/**
 * A fresh data dir for an embedded PGlite database of its own: a copy of the run's template (an
 * empty database straight after initdb, made by pglite-setup.ts) when there is one, else empty (the
 * harness's PGlite then runs initdb). Never migrated: the harness migrates it. Removed by `remove()`.
 */
export function createTestDataDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `triggers-pglite-${process.pid}-`));
  const template = process.env.TEST_PGLITE_TEMPLATE;
  if (template && existsSync(join(template, "pgdata"))) cpSync(join(template, "pgdata"), join(dir, "pgdata"), { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh, empty Postgres schema of its own (callers apply the migrations). Dropped by `drop()`. */
export function createTestSchema(): Promise<{ schema: string; url: string; drop(): Promise<void> }> {
  return createSchema(TEST_DATABASE_URL, uniqueName("t"));
}

/**
 * A database of its own on the run's store, migrated, without the rest of the harness: a Postgres
 * schema (`url` set) or a PGlite data dir opened in this process. `close()` closes and removes it.
 * With `before`, only the migrations before that one are applied (a migration test's starting
 * point; the named migration must exist).
 */
export async function openTestDatabase(opts: { poolSize?: number; before?: string } = {}): Promise<{ store: TestStore; db: Database; url: string | undefined; close(): Promise<void> }> {
  const store = currentStore();
  const all = loadMigrations();
  if (opts.before !== undefined && !all.some((m) => m.name === opts.before)) throw new Error(`no migration named ${opts.before}`);
  const migrations = opts.before === undefined ? all : all.filter((m) => m.name < opts.before!);
  if (store === "postgres") {
    const schema = await createTestSchema();
    const db = connectPostgres(schema.url, { poolSize: opts.poolSize ?? 3 });
    await applyMigrations(db.migrator, migrations);
    return { store, db, url: schema.url, close: async () => (await db.close(), await schema.drop()) };
  }
  const data = createTestDataDir();
  const db = await openEmbedded(data.dir);
  await applyMigrations(db.migrator, migrations);
  return { store, db, url: undefined, close: async () => (await db.close(), data.remove()) };
}

/** Deadlines generous enough for a loaded test machine (scaled by its time factor); a test that exercises one overrides it. */
export const TEST_DEADLINES: Readonly<Record<string, string>> = {
  REDIS_COMMAND_TIMEOUT_MS: String(deadline(3000)),
  DB_QUERY_TIMEOUT_MS: String(deadline(15000)),
};

export interface HarnessOptions {
  /** Run an in-process ingest worker (default true). */
  readonly worker?: boolean;
  /** Connect Redis (default false: the in-process fallbacks). */
  readonly redis?: boolean;
  /** Extra environment for loadConfig. */
  readonly env?: Record<string, string>;
}

export interface Harness {
  readonly config: Config;
  readonly c: Container;
  readonly api: RunningApi;
  readonly worker: IngestWorker | undefined;
  readonly url: string;
  /** The store this harness runs on (from the Jest project: see test/helpers/store.ts). */
  readonly store: TestStore;
  /** Postgres only: the harness's own schema. Reading it on PGlite throws (mark the test onlyOn("postgres", reason)). */
  readonly schema: string;
  /** Postgres only: a DATABASE_URL other processes can share. Reading it on PGlite throws. */
  readonly databaseUrl: string;
  /** PGlite only: the harness's own data dir (TRIGGERS_DATA_DIR); undefined on Postgres. */
  readonly dataDir: string | undefined;
  /** Every log line written during the test, as parsed JSON. */
  readonly logs: string[];
  key(tenant: string, scopes?: readonly Scope[]): Promise<string>;
  request(method: string, path: string, opts?: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  sql<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Polls `fn` until it returns a truthy value or `ms` (a reference deadline, scaled: test/helpers/deadlines.ts) pass. */
  eventually<T>(fn: () => Promise<T | undefined | null | false>, ms?: number): Promise<T>;
  close(): Promise<void>;
}

/**
 * Starts the API (and a worker) on the run's store, the shared SQS emulator (own queue) and
 * optionally Redis. On Postgres the harness gets its own schema; on PGlite a fresh data dir, opened
 * and migrated in this process, the way `npm start` does on a newcomer's first run.
 */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const store = currentStore();
  const db = store === "postgres" ? await createTestSchema() : undefined;
  const data = store === "pglite" ? createTestDataDir() : undefined;
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig({
    ...(db ? { DATABASE_URL: db.url } : {}),
    SQS_ENDPOINT: sqsEndpoint(),
    SQS_QUEUE_NAME: uniqueName("q"),
    PORT: "0",
    WORKER_WAIT_SECONDS: "1",
    WORKER_RECEIVERS: "2",
    REDIS_PREFIX: uniqueName("test"),
    TRIGGERS_DATA_DIR: data?.dir ?? "/tmp/triggers-test-unused",
    ...(opts.redis ? { REDIS_URL: TEST_REDIS_URL } : {}),
    // Production deadlines are tuned for a service with cores of its own; a test runner shares two
    // cores with Postgres, Redis, the emulator and the other Jest worker, where a healthy Redis can
    // take longer than 500 ms to answer. Tests of the deadlines themselves (test/faults) set their own.
    ...TEST_DEADLINES,
    ...opts.env,
  });
  let c: Container;
  try {
    c = await buildContainer(config, { logger: createLogger("info", sink), poolSize: 5 });
  } catch (err) {
    await db?.drop();
    data?.remove();
    throw err;
  }
  if (c.db.kind !== store) throw new Error(`harness wanted ${store} but the container opened ${c.db.kind}`);
  await applyMigrations(c.db.migrator, loadMigrations());
  // The roles' own factories; many harnesses share this machine, so no second listener on
  // METRICS_PORT and no queue depth polling (observability.test.ts polls when it needs to).
  const role = await startApiRole(c, { metricsServer: false, queueDepth: false });
  const api = role.api;
  const worker = opts.worker === false ? undefined : startIngestWorker(c);
  const url = `http://127.0.0.1:${api.port}`;
  const h: Harness = {
    config,
    c,
    api,
    worker,
    url,
    store,
    get schema(): string {
      if (!db) throw new Error("h.schema is Postgres only: mark this test onlyOn(\"postgres\", reason)");
      return db.schema;
    },
    get databaseUrl(): string {
      if (!db) throw new Error("h.databaseUrl is Postgres only: mark this test onlyOn(\"postgres\", reason)");
      return db.url;
    },
    dataDir: data?.dir,
    logs,
    async key(tenant, scopes = SCOPES) {
      return (await createApiKey(c.db.prisma, { tenantId: tenant, name: "test", scopes })).secret;
    },
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.key) headers.Authorization = `Bearer ${o.key}`;
      let body: string | undefined = o.raw;
      if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers["Content-Type"] ??= "application/json";
      }
      const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      // Every response must match the served OpenAPI document, so the document cannot drift from the code.
      const validator = await validatorAt(url);
      validator.validate({ method, path, status: res.status, headers: res.headers, text });
      // And every request the server accepted must be one the document allows.
      if (res.status >= 200 && res.status < 300) validator.validateRequest({ method, path, headers, body: typeof body === "string" ? body : undefined }, res.status);
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    sql(text, params = []) {
      return c.db.migrator.query(text, params);
    },
    eventually<T>(fn: () => Promise<T | undefined | null | false>, ms = 5000): Promise<T> {
      return waitFor(fn, { timeoutMs: ms });
    },
    async close() {
      await role.close();
      await worker?.stop();
      await c.close();
      await db?.drop();
      data?.remove();
    },
  };
  return h;
}
