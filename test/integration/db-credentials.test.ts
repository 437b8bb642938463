import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { mockClient } from "aws-sdk-client-mock";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { CLI } from "../helpers/env";
import { sqsEndpoint, uniqueName, onlyOn } from "../helpers/harness";
import { adminQuery, startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres";
import { connectPostgres, type Database } from "../../src/store/database";
import { pgConnectionOptions, RDS_CA_BUNDLE, tlsOptions } from "../../src/store/db-connection";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { createApiKey } from "../../src/store/api-keys";
import { ConfigError } from "../../src/config";
import { freePort, waitForHttp } from "../../src/dev/local-services";
import { deadline as scaled } from "../helpers/deadlines";

jest.setTimeout(scaled(90_000));

const NO_AUTH = { iam: false, secretArn: undefined, passwordFile: undefined } as const;

let pg: PrivatePostgres;
let dir: string;
const ROLE = "rotating_login";
const SCHEMA = "app";

/** Login with `password` as the rotating role: resolves to the SQLSTATE of a refusal, or "ok". */
async function tryLogin(password: string): Promise<string> {
  const c = new Client({ host: "127.0.0.1", port: pg.port, user: ROLE, password, database: "postgres", connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    return "ok";
  } catch (err) {
    return String((err as { code?: string }).code);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Closes every server connection of the rotating role, so the pool must open new ones. */
async function dropConnections(): Promise<void> {
  await adminQuery(pg, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [ROLE]);
  // Let the pools see their idle connections close before the next query.
  await new Promise((r) => setTimeout(r, 300));
}

beforeAll(async () => {
  pg = await startPrivatePostgres();
  dir = mkdtempSync(join(tmpdir(), "triggers-cred-"));
  // Two schemas migrated at once on a fresh server: both create role triggers_app, neither fails.
  await Promise.all(
    [SCHEMA, `${SCHEMA}_twin`].map(async (schema) => {
      await adminQuery(pg, `CREATE SCHEMA ${schema}`);
      const admin = connectPostgres(`${pg.adminUrl}?schema=${schema}`, { poolSize: 1 });
      try {
        await applyMigrations(admin.migrator, loadMigrations());
      } finally {
        await admin.close();
      }
    }),
  );
  // A throwaway login with a password, holding the app role's privileges.
  await adminQuery(pg, `CREATE ROLE ${ROLE} LOGIN PASSWORD 'first-password' IN ROLE triggers_app`);
});

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

onlyOn("postgres", "it starts a Postgres server of its own, with passwords and TLS").describe("rotation: the password changes while the service runs", () => {
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await gone;
    }
    child = undefined;
  });

  test("the api, reading DATABASE_PASSWORD_FILE, keeps opening connections after ALTER ROLE … PASSWORD", async () => {
    await adminQuery(pg, `ALTER ROLE ${ROLE} PASSWORD 'first-password'`);
    const passwordFile = join(dir, "db-password");
    writeFileSync(passwordFile, "first-password\n", { mode: 0o600 });
    const port = await freePort();
    const metricsPort = await freePort();
    const output: string[] = [];
    child = spawn(process.execPath, [CLI, "api"], {
      env: {
        PATH: process.env.PATH ?? "",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        DATABASE_URL: `postgresql://${ROLE}@127.0.0.1:${pg.port}/postgres?schema=${SCHEMA}`,
        DATABASE_PASSWORD_FILE: passwordFile,
        SQS_ENDPOINT: sqsEndpoint(),
        SQS_QUEUE_NAME: uniqueName("rot"),
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        // Every request reads its key from Postgres, so every request needs a pool connection.
        API_KEY_CACHE_MS: "0",
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c: Buffer) => output.push(String(c)));
    child.stderr!.on("data", (c: Buffer) => output.push(String(c)));
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/healthz`, scaled(30_000)).catch((err: Error) => {
      throw new Error(`${err.message}\n${output.join("")}`);
    });

    const admin = connectPostgres(`${pg.adminUrl}?schema=${SCHEMA}`, { poolSize: 1 });
    let key: string;
    try {
      key = (await createApiKey(admin.prisma, { tenantId: "rot", name: "rotation", scopes: ["inbox:read"] })).secret;
    } finally {
      await admin.close();
    }
    const inbox = async () => (await fetch(`${base}/inbox?mode=peek`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5000) })).status;
    expect(await inbox()).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    // Rotate: the server takes only the new password from now on, the file holds it.
    const rotatedAt = new Date();
    await adminQuery(pg, `ALTER ROLE ${ROLE} PASSWORD 'second-password'`);
    writeFileSync(passwordFile, "second-password\n", { mode: 0o600 });
    expect(await tryLogin("first-password")).toBe("28P01");
    await dropConnections();

    // The pool opens new connections with the new password: at most one login is refused (the
    // cached password), then every request succeeds, without a restart.
    const untilThreeOk = async () => {
      const statuses: number[] = [];
      const deadline = Date.now() + scaled(15_000);
      while (Date.now() < deadline) {
        statuses.push(await inbox());
        if (statuses.slice(-3).join() === "200,200,200") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return statuses;
    };
    const statuses = await untilThreeOk();
    expect(statuses.slice(-3)).toEqual([200, 200, 200]);
    expect(child.exitCode).toBeNull();
    const fresh = await adminQuery(pg, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_start > $2", [ROLE, rotatedAt]);
    expect(fresh[0]!.n).toBeGreaterThan(0);

    // And once more, so the new password is not a one-off.
    // (A request may still meet a connection the server just closed; what matters is that the
    // next ones log in.)
    await dropConnections();
    expect((await untilThreeOk()).slice(-3)).toEqual([200, 200, 200]);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  test("the Secrets Manager source (stubbed at the SDK client) is re-read after a refused login", async () => {
    await adminQuery(pg, `ALTER ROLE ${ROLE} PASSWORD 'secret-one'`);
    const sm = mockClient(SecretsManagerClient);
    let current = "secret-one";
    sm.on(GetSecretValueCommand).callsFake(async () => ({ SecretString: JSON.stringify({ username: ROLE, password: current }) }));
    let db: Database | undefined;
    try {
      db = connectPostgres(`postgresql://${ROLE}@127.0.0.1:${pg.port}/postgres?schema=${SCHEMA}`, {
        poolSize: 2,
        auth: { ...NO_AUTH, secretArn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:rds-master", region: "us-east-1" },
      });
      await db.ping();
      await db.ping();
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(1); // cached

      await adminQuery(pg, `ALTER ROLE ${ROLE} PASSWORD 'secret-two'`);
      current = "secret-two";
      await dropConnections();
      const results: string[] = [];
      for (let i = 0; i < 4; i++) results.push(await db.ping().then(() => "ok", (err: { code?: string }) => String(err.code)));
      // The cached password fails once (28P01), the next connection reads the secret again.
      expect(results.filter((r) => r !== "ok").every((r) => r === "28P01")).toBe(true);
      expect(results.slice(-2)).toEqual(["ok", "ok"]);
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    } finally {
      await db?.close();
      sm.restore();
    }
  });
});

onlyOn("postgres", "it starts a Postgres server of its own, with passwords and TLS").describe("TLS: the URL forms Terraform builds", () => {
  async function sslOf(url: string): Promise<boolean> {
    const db = connectPostgres(url, { poolSize: 1 });
    try {
      const rows = await db.migrator.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
      return rows[0]!.ssl;
    } finally {
      await db.close();
    }
  }
  const login = () => `${ROLE}:tls-password`;
  beforeAll(() => adminQuery(pg, `ALTER ROLE ${ROLE} PASSWORD 'tls-password'`));

  test("sslmode=verify-full checks the chain and the host name", async () => {
    // The server's own certificate as the CA: accepted for the name it carries.
    expect(await sslOf(`postgresql://${login()}@localhost:${pg.port}/postgres?sslmode=verify-full&sslrootcert=${pg.certFile}`)).toBe(true);
    // Same chain, another name (the certificate names only localhost): refused.
    await expect(sslOf(`postgresql://${login()}@127.0.0.1:${pg.port}/postgres?sslmode=verify-full&sslrootcert=${pg.certFile}`)).rejects.toThrow(/does not match|altnames/i);
    // The default CA is the Amazon RDS bundle, which did not sign this server: refused.
    await expect(sslOf(`postgresql://${login()}@localhost:${pg.port}/postgres?sslmode=verify-full`)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  test("sslmode=require encrypts without verifying; sslmode=disable and loopback without sslmode use plain TCP", async () => {
    expect(await sslOf(`postgresql://${login()}@127.0.0.1:${pg.port}/postgres?sslmode=require`)).toBe(true);
    expect(await sslOf(`postgresql://${login()}@127.0.0.1:${pg.port}/postgres?sslmode=disable`)).toBe(false);
    expect(await sslOf(`postgresql://${login()}@localhost:${pg.port}/postgres`)).toBe(false);
  });

  test("any other host defaults to verify-full against the Amazon RDS CA bundle", () => {
    expect(RDS_CA_BUNDLE.length).toBeGreaterThan(10);
    expect(RDS_CA_BUNDLE.every((pem) => pem.includes("BEGIN CERTIFICATE"))).toBe(true);
    for (const url of [
      "postgresql://triggers_app@triggers.cluster-abc.us-east-1.rds.amazonaws.com:5432/triggers",
      "postgresql://triggers_app@triggers.cluster-abc.us-east-1.rds.amazonaws.com:5432/triggers?sslmode=verify-full",
    ]) {
      const tls = tlsOptions(new URL(url));
      expect(tls).not.toBe(false);
      expect(tls).toMatchObject({ rejectUnauthorized: true, ca: [...RDS_CA_BUNDLE] });
      expect((tls as { checkServerIdentity?: unknown }).checkServerIdentity).toBeUndefined();
    }
    expect(() => tlsOptions(new URL("postgresql://u@db.example.com/x?sslmode=prefer"))).toThrow(ConfigError);
  });

  test("IAM authentication signs a token per connection for the URL's user, cached, and refuses plain TCP", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "example-secret", AWS_REGION: "eu-west-1" });
    try {
      const conn = pgConnectionOptions("postgresql://triggers_app@triggers.cluster-abc.eu-west-1.rds.amazonaws.com:5432/triggers?sslmode=verify-full", { ...NO_AUTH, iam: true, region: "eu-west-1" });
      expect(conn.options).toMatchObject({ host: "triggers.cluster-abc.eu-west-1.rds.amazonaws.com", port: 5432, user: "triggers_app", database: "triggers" });
      const password = conn.options.password as () => Promise<string>;
      expect(typeof password).toBe("function");
      const token = await password();
      expect(token).toMatch(/^triggers\.cluster-abc\.eu-west-1\.rds\.amazonaws\.com:5432\/\?/);
      expect(token).toContain("Action=connect");
      expect(token).toContain("DBUser=triggers_app");
      expect(await password()).toBe(token);
      conn.close();
      expect(() => pgConnectionOptions("postgresql://triggers_app@db.example.com/x?sslmode=disable", { ...NO_AUTH, iam: true })).toThrow(ConfigError);
      expect(() => pgConnectionOptions("postgresql://db.example.com/x", { ...NO_AUTH, iam: true })).toThrow(/user/);
    } finally {
      process.env = saved;
    }
  });
});
