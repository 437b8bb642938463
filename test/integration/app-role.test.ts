import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { CLI } from "../helpers/env";
import { Client } from "pg";
import { TEST_DATABASE_URL } from "../helpers/env";
import { createTestSchema, sqsEndpoint, uniqueName, onlyOn } from "../helpers/harness";
import { connectPostgres } from "../../src/store/database";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { loadConfig } from "../../src/config";
import { buildContainer, type Container } from "../../src/container";
import type { RunningApiRole } from "../../src/roles/api";
import { startApiRole } from "../../src/roles/api";
import type { IngestWorker } from "../../src/ingest/ingest-worker";
import { startIngestWorker } from "../../src/roles/worker";
import { createLogger } from "../../src/observability/logger";
import { createApiKey } from "../../src/store/api-keys";
import { expireEvents } from "../../src/jobs/expire-events";
import { insertEvents } from "../../src/store/events/insert-events";
import { ensurePartitions } from "../../src/store/partitions";
import { retirePartitions } from "../../src/store/retention";
import { deadline } from "../helpers/deadlines";

jest.setTimeout(deadline(60_000));

const MIGRATION = "20261201000100_app_role";
/** Lets the role read which migrations are applied (the readiness check `schema`), nothing more. */
const READS_MIGRATIONS = "20261207000100_app_role_reads_migrations";

/** The shared test server trusts local logins, so the app role logs in without a password here. */
function appRoleUrl(schema: string): string {
  const u = new URL(TEST_DATABASE_URL);
  u.username = "triggers_app";
  u.password = "";
  u.searchParams.set("schema", schema);
  return u.toString();
}

onlyOn("postgres", "database roles and grants belong to a Postgres server; roles run as processes on DATABASE_URL").describe("the least-privilege app role (migration 20261201000100_app_role)", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let app: Client;

  beforeAll(async () => {
    schema = await createTestSchema();
    const admin = connectPostgres(schema.url, { poolSize: 1 });
    try {
      const first = await applyMigrations(admin.migrator, loadMigrations());
      expect(first.applied).toContain(MIGRATION);
      // Repeatable: recorded once, and its statements run again without error.
      const second = await applyMigrations(admin.migrator, loadMigrations());
      expect(second.applied).toEqual([]);
      // The role's migrations, run again in order (the later one grants what the first revokes).
      const again = loadMigrations().filter((x) => x.name === MIGRATION || x.name === READS_MIGRATIONS);
      expect(again).toHaveLength(2);
      await admin.migrator.transaction(async (tx) => {
        for (const m of again) for (const s of m.statements) await tx.query(s);
      });
    } finally {
      await admin.close();
    }
    app = new Client({ connectionString: TEST_DATABASE_URL.replace("postgres@", "triggers_app@"), options: `-c search_path="${schema.schema}"` });
    await app.connect();
  });
  afterAll(async () => {
    await app?.end();
    await schema?.drop();
  });

  test("is a LOGIN role without superuser, create-role or create-db rights", async () => {
    const rows = (await app.query("SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user")).rows;
    expect(rows).toEqual([{ rolcanlogin: true, rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false }]);
  });

  test("can do what the service does: ingest, lease, ack and expire through the real code", async () => {
    const logs: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) });
    const config = loadConfig({
      DATABASE_URL: appRoleUrl(schema.schema),
      SQS_ENDPOINT: sqsEndpoint(),
      SQS_QUEUE_NAME: uniqueName("app"),
      PORT: "0",
      WORKER_WAIT_SECONDS: "1",
      WORKER_RECEIVERS: "2",
      REDIS_PREFIX: uniqueName("app"),
      TRIGGERS_DATA_DIR: "/tmp/triggers-test-unused",
    });
    let c: Container | undefined;
    let api: RunningApiRole | undefined;
    let worker: IngestWorker | undefined;
    try {
      c = await buildContainer(config, { logger: createLogger("warn", sink), poolSize: 3 });
      api = await startApiRole(c, { metricsServer: false, queueDepth: false });
      worker = startIngestWorker(c, { visibilitySeconds: 30 });
      const key = (await createApiKey(c.db.prisma, { tenantId: "app-role", name: "t", scopes: ["events:write", "inbox:read", "events:ack"] })).secret;
      const base = `http://127.0.0.1:${api.api.port}`;
      const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
      const posted = await fetch(`${base}/events`, { method: "POST", headers, body: JSON.stringify({ type: "app.role", payload: { n: 1 } }) });
      expect(posted.status).toBe(202);
      let leased: { data: Array<{ id: string }> } = { data: [] };
      for (let i = 0; i < 100 && leased.data.length === 0; i++) {
        leased = (await (await fetch(`${base}/inbox`, { headers })).json()) as typeof leased;
        if (leased.data.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(leased.data).toHaveLength(1);
      const acked = await fetch(`${base}/events/ack`, { method: "POST", headers, body: JSON.stringify({ ids: [leased.data[0]!.id] }) });
      expect(acked.status).toBe(200);
      const expired = await expireEvents({ prisma: c.db.prisma }, { now: new Date(Date.now() + 86_400_000), batchSize: 100, acknowledgedRetentionSeconds: 0, deadRetentionSeconds: 0, timeBudgetMs: 5000 });
      expect(expired).toBeDefined();
      expect((await c.db.migrator.query<{ n: number }>("SELECT count(*)::int AS n FROM events")).at(0)?.n).toBe(0);
      // Partitions without DDL rights: one made on demand for an old row (a message that sat in
      // SQS), ensured ahead, and retired by drop (plain DETACH through the migration's functions).
      const oldAt = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
      const old = { v: 1, id: "evt_app_role_old", tenant_id: "app-role", type: "app.role", source: null, tags: [], payload: {}, occurred_at: null, idempotency_key: "k-old", body_hash: "0".repeat(64), received_at: oldAt.toISOString() } as const;
      expect(await insertEvents(c.db.prisma, [old])).toBe(1);
      expect(await ensurePartitions(c.db.prisma, new Date(), { intervalSeconds: 86_400, ahead: 5 })).toBeGreaterThan(0);
      await c.db.prisma.$executeRawUnsafe("UPDATE deliveries SET status = 'acknowledged', acknowledged_at = '2020-01-03T00:00:00Z' WHERE event_id = 'evt_app_role_old'");
      const retired = await retirePartitions(c.db, { now: new Date(), acknowledgedRetentionSeconds: 60, deadRetentionSeconds: 60 });
      expect(retired.retired).toContain("p20200102t000000");
      expect((await c.db.migrator.query<{ n: number }>("SELECT count(*)::int AS n FROM idempotency_keys")).at(0)?.n).toBe(0);
      const ready = await fetch(`${base}/readyz`);
      expect({ status: ready.status, body: await ready.text() }).toEqual({ status: 200, body: expect.stringContaining('"schema":{"ok":true}') });
    } finally {
      await api?.close();
      await worker?.stop();
      await c?.close();
    }
    expect(logs.filter((l) => l.includes('"level":50'))).toEqual([]);
  });

  test.each([
    ["CREATE TABLE", (s: string) => `CREATE TABLE "${s}".intruder (id int)`],
    ["ALTER TABLE", (s: string) => `ALTER TABLE "${s}".events ADD COLUMN intruder int`],
    ["DROP TABLE", (s: string) => `DROP TABLE "${s}".api_keys`],
    ["TRUNCATE", (s: string) => `TRUNCATE "${s}".events`],
    ["CREATE INDEX", (s: string) => `CREATE INDEX intruder_idx ON "${s}".events (type)`],
    ["CREATE TYPE", (s: string) => `CREATE TYPE "${s}".intruder AS ENUM ('x')`],
    ["change the migration history", (s: string) => `UPDATE "${s}"._prisma_migrations SET rolled_back_at = now()`],
    ["delete from the migration history", (s: string) => `DELETE FROM "${s}"._prisma_migrations`],
    ["add to the migration history", (s: string) => `INSERT INTO "${s}"._prisma_migrations (id, checksum, migration_name) VALUES ('x', 'x', 'x')`],
  ])("cannot %s", async (_what, sql) => {
    await expect(app.query(sql(schema.schema))).rejects.toMatchObject({ code: expect.stringMatching(/^(42501)$/) });
  });

  test("can read which migrations are applied (the readiness check `schema`)", async () => {
    const rows = (await app.query(`SELECT migration_name FROM "${schema.schema}"._prisma_migrations`)).rows as Array<{ migration_name: string }>;
    expect(rows.map((r) => r.migration_name)).toEqual(expect.arrayContaining([MIGRATION, READS_MIGRATIONS]));
  });
});

onlyOn("postgres", "database roles and grants belong to a Postgres server; roles run as processes on DATABASE_URL").describe("migrate", () => {
  test("creates the schema named in ?schema= and migrates into it", async () => {
    const name = uniqueName("m");
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      const u = new URL(TEST_DATABASE_URL);
      u.searchParams.set("schema", name);
      const run = spawnSync(process.execPath, [CLI, "migrate"], {
        env: { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", DATABASE_URL: u.toString() },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
      // Partitions of events and deliveries aside: they are their parents' storage.
      const tables = await admin.query("SELECT c.relname AS table_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1", [name]);
      expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(["_prisma_migrations", "api_keys", "deliveries", "event_schemas", "events", "idempotency_keys", "subscriptions"]);
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      await admin.end();
    }
  });
});
