import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { CLI } from "../helpers/env";
import { createTestSchema, sqsEndpoint, uniqueName, onlyOn } from "../helpers/harness";
import { freePort, waitForHttp } from "../../src/dev/local-services";
import { deadline } from "../helpers/deadlines";

jest.setTimeout(deadline(120_000));

type Role = "api" | "worker" | "scheduler";
const ROLES: Role[] = ["api", "worker", "scheduler"];

interface Run {
  readonly code: number | null;
  readonly ms: number;
  readonly stderr: string;
}

const live: ChildProcess[] = [];

/** Runs the built CLI with exactly `env` (plus PATH) and waits for it to exit, killing it after `limitMs`. */
function runCli(args: string[], env: Record<string, string>, limitMs = 10_000): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // An empty working directory: a fallback to embedded PGlite would have to create ./.triggers here.
    cwd: "/",
  });
  live.push(child);
  let stderr = "";
  child.stdout!.resume();
  child.stderr!.on("data", (c: Buffer) => (stderr += String(c)));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, stderr });
    });
  });
}

/** Starts api, worker and scheduler as the image runs them on `databaseUrl`, each answering /healthz on its METRICS_PORT. */
async function startRoles(databaseUrl: string, queue: string): Promise<Array<{ role: Role; child: ChildProcess; metricsPort: number }>> {
  return Promise.all(
    ROLES.map(async (role) => {
      const metricsPort = await freePort();
      const child = spawn(process.execPath, [CLI, role], {
        env: {
          PATH: process.env.PATH ?? "",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          DATABASE_URL: databaseUrl,
          SQS_ENDPOINT: sqsEndpoint(),
          SQS_QUEUE_NAME: queue,
          REDIS_PREFIX: uniqueName(queue),
          PORT: String(await freePort()),
          METRICS_PORT: String(metricsPort),
          WORKER_WAIT_SECONDS: "1",
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      live.push(child);
      await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`, deadline(45_000));
      return { role, child, metricsPort };
    }),
  );
}

afterAll(() => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

onlyOn("postgres", "production roles run as processes on DATABASE_URL").describe("production roles never fall back to embedded parts", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  beforeAll(async () => {
    schema = await createTestSchema();
  });
  afterAll(() => schema.drop());

  test.each(ROLES)("%s with a database but no queue settings exits non-zero within 10 s, naming SQS_QUEUE_URL", async (role) => {
    const port = await freePort();
    const run = await runCli([role], { DATABASE_URL: schema.url, PORT: String(port), METRICS_PORT: String(await freePort()), TRIGGERS_DATA_DIR: "/nonexistent/triggers" });
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBeNull(); // null: still running after 10 s, killed
    expect(run.ms).toBeLessThan(10_000);
    expect(run.stderr).toContain("SQS_QUEUE_URL");
    expect(run.stderr).toContain("SQS_ENDPOINT");
    expect(run.stderr).not.toContain("DATABASE_URL");
  });

  test.each(ROLES)("%s without a database exits non-zero within 10 s, naming DATABASE_URL", async (role) => {
    const port = await freePort();
    const run = await runCli([role], { SQS_ENDPOINT: sqsEndpoint(), SQS_QUEUE_NAME: uniqueName("q"), PORT: String(port), METRICS_PORT: String(await freePort()) });
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBeNull();
    expect(run.ms).toBeLessThan(10_000);
    expect(run.stderr).toContain("DATABASE_URL");
    expect(run.stderr).not.toContain("SQS_QUEUE_URL");
    expect(run.stderr).not.toMatch(/EACCES|\n\s+at /); // a message, not a stack trace
  });

  test.each(ROLES)("%s with nothing configured names both", async (role) => {
    const run = await runCli([role], { PORT: String(await freePort()), METRICS_PORT: String(await freePort()) });
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBeNull();
    expect(run.stderr).toContain("DATABASE_URL");
    expect(run.stderr).toContain("SQS_QUEUE_URL");
  });
});

onlyOn("postgres", "production roles run as processes on DATABASE_URL").describe("healthcheck", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    schema = await createTestSchema();
    const migrated = await runCli(["migrate"], { DATABASE_URL: schema.url }, deadline(60_000));
    expect(migrated.code).toBe(0);
  });
  afterAll(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
          }),
      ),
    );
    await schema.drop();
  });

  test("exits 0 against each running role on its METRICS_PORT (api included) and 1 once it is gone", async () => {
    const started = await startRoles(schema.url, uniqueName("hc"));
    children.push(...started.map((r) => r.child));
    for (const { role, metricsPort } of started) {
      const run = await runCli(["healthcheck"], { METRICS_PORT: String(metricsPort) });
      expect({ role, code: run.code }).toEqual({ role, code: 0 });
    }
    for (const { role, child, metricsPort } of started) {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
      const run = await runCli(["healthcheck"], { METRICS_PORT: String(metricsPort) });
      expect({ role, code: run.code }).toEqual({ role, code: 1 });
    }
  });

  test("exits 1 on a non-2xx answer, on no answer within 2 s, and on a bad METRICS_PORT", async () => {
    const servers: Server[] = [];
    const serve = async (handler: Parameters<typeof createServer>[1]) => {
      const s = createServer(handler);
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
      return (s.address() as { port: number }).port;
    };
    try {
      const unhealthy = await serve((_req, res) => {
        res.statusCode = 503;
        res.end("{}");
      });
      const silent = await serve(() => undefined); // never answers
      const healthy = await serve((req, res) => {
        res.statusCode = req.url === "/healthz" ? 200 : 404;
        res.end("{}");
      });
      expect((await runCli(["healthcheck"], { METRICS_PORT: String(healthy) })).code).toBe(0);
      expect((await runCli(["healthcheck"], { METRICS_PORT: String(unhealthy) })).code).toBe(1);
      const slow = await runCli(["healthcheck"], { METRICS_PORT: String(silent) });
      expect(slow.code).toBe(1);
      expect(slow.ms).toBeLessThan(deadline(6_000));
      expect((await runCli(["healthcheck"], { METRICS_PORT: "not-a-port" })).code).toBe(1);
    } finally {
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    }
  });
});

onlyOn("postgres", "production roles run as processes on DATABASE_URL").describe("a role started before its migration", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    schema = await createTestSchema();
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await schema.drop();
  });

  test("api, worker and scheduler stay not ready, naming the missing migrations and the command, then become ready once `migrate` ran, without a restart", async () => {
    const started = (await startRoles(schema.url, uniqueName("unmigrated"))).map((r) => ({ ...r, readyz: `http://127.0.0.1:${r.metricsPort}/readyz` }));
    children.push(...started.map((r) => r.child));
    for (const { role, readyz } of started) {
      const res = await fetch(readyz);
      const body = (await res.json()) as { error: { details: Array<{ dependency: string; message: string }> } };
      const schemaCheck = body.error.details.find((d) => d.dependency === "schema");
      expect({ role, status: res.status, message: schemaCheck?.message }).toEqual({ role, status: 503, message: expect.stringContaining("run `triggers migrate`") });
    }
    const migrated = await runCli(["migrate"], { DATABASE_URL: schema.url }, deadline(60_000));
    expect(migrated.code).toBe(0);
    for (const { role, child, readyz } of started) {
      const until = Date.now() + deadline(15_000);
      let status = 0;
      let failing = "";
      while (Date.now() < until) {
        const res = await fetch(readyz);
        status = res.status;
        if (status === 200) break;
        failing = await res.text();
        await new Promise((r) => setTimeout(r, 250));
      }
      expect({ role, status, failing: status === 200 ? "" : failing, running: child.exitCode === null && child.signalCode === null }).toEqual({ role, status: 200, failing: "", running: true });
    }
  });
});
