/**
 * Each role starts from the image's own argv: the Dockerfile's ENTRYPOINT followed by the ECS task
 * definition's command (terraform/modules/triggers, local.commands), exactly as the container
 * runtime composes them. The built CLI runs with that argv against the test Postgres (a schema of
 * its own) and the shared SQS emulator (a queue of its own): `migrate` and `keys list` run to
 * completion, the long-running roles until they log that they are listening and answer /healthz,
 * then they take a SIGTERM and must exit 0. Where the CLI has a `healthcheck` command, the ECS
 * container health check (ecs.tf) is also run against each role and must exit 0.
 *
 * IMAGE_ARGV_ROOT: run another build (a folder with dist/ and node_modules/, e.g. an unpacked
 * image's /app) instead of this checkout's.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { dockerEntrypoint, dockerWorkdir, imageNodeOptions } from "../../bench/image";
import { freePort } from "../../src/dev/local-services";
import { createSqsClient } from "../../src/queue/sqs-queue";
import { TEST_REDIS_URL } from "../helpers/env";
import { ecsHealthCheck } from "../helpers/probe-commands";
import { createTestSchema, onlyOn, sqsEndpoint, uniqueName } from "../helpers/harness";
import { MODULE_DIR, REPO_ROOT } from "../terraform/load-hcl";
import { deadline as scaled } from "../helpers/deadlines";

jest.setTimeout(scaled(120_000));

/** Stands for the image's WORKDIR: a folder holding the built dist/ (default: this checkout). */
const IMAGE_ROOT = process.env.IMAGE_ARGV_ROOT ?? REPO_ROOT;

/**
 * local.commands of the module (main.tf), read as text: each entry must be a literal list of
 * strings, which is what a task definition's command has to be for this test to mean anything.
 * (Not through @cdktf/hcl2json: its Go runtime keeps a lone Jest process from exiting.)
 */
function taskCommands(): Record<string, string[]> {
  const hcl = readFileSync(join(MODULE_DIR, "main.tf"), "utf8");
  const body = /^\s*commands\s*=\s*\{([^}]*)\}/m.exec(hcl)?.[1];
  if (body === undefined) throw new Error("local.commands not found in terraform/modules/triggers/main.tf");
  const out: Record<string, string[]> = {};
  for (const line of body.split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter(Boolean)) {
    const m = /^(\w+)\s*=\s*(\[.*\])$/.exec(line);
    if (!m) throw new Error(`unreadable entry in local.commands: ${line}`);
    try {
      out[m[1]!] = JSON.parse(m[2]!) as string[];
    } catch {
      throw new Error(`local.commands.${m[1]} is not a literal list of strings: ${m[2]}`);
    }
  }
  return out;
}

interface Spawned {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const spawned: ChildProcess[] = [];

/**
 * Runs argv as the container would: argv[0] is the program (`node`: this test's Node binary), the
 * rest unchanged, with IMAGE_ROOT (the repository root unless IMAGE_ARGV_ROOT says otherwise)
 * standing in for the image's WORKDIR (/app holds the same dist/ there). Nothing of the test's
 * environment leaks in but PATH.
 */
function run(argv: string[], env: Record<string, string>): Spawned {
  const [program, ...args] = argv;
  if (program !== "node") throw new Error(`the image runs ${program}, not node: ${argv.join(" ")}`);
  const child = spawn(process.execPath, args, {
    cwd: IMAGE_ROOT,
    env: { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  spawned.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => lines.push(l));
  createInterface({ input: child.stderr! }).on("line", (l) => lines.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exited };
}

async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until a line of `s` matches, failing early if the process exits first. */
async function waitForLine(s: Spawned, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited: { code: number | null } | undefined;
  void s.exited.then((e) => (exited = e));
  for (;;) {
    if (s.lines.some((l) => re.test(l))) return;
    if (exited) throw new Error(`exited (${exited.code}) before logging ${re}:\n${s.lines.join("\n")}`);
    if (Date.now() > deadline) throw new Error(`did not log ${re} within ${ms} ms:\n${s.lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function healthz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  await res.text();
  return res.status;
}

onlyOn("postgres", "each role is a separate process that reaches the database through DATABASE_URL").describe("each role starts from the image's own argv (Dockerfile ENTRYPOINT + the task definition's command)", () => {
  let entrypoint: string[];
  let commands: Record<string, string[]>;
  let db: Awaited<ReturnType<typeof createTestSchema>>;
  let baseEnv: Record<string, string>;
  let sqs: ReturnType<typeof createSqsClient>;
  let cliHasHealthcheck = false;

  beforeAll(async () => {
    sqs = createSqsClient({ region: "us-east-1", endpoint: sqsEndpoint() });
    entrypoint = dockerEntrypoint(REPO_ROOT);
    commands = taskCommands();
    const help = run([...entrypoint, "help"], {});
    await within(help.exited, scaled(15_000), () => "help did not finish");
    cliHasHealthcheck = help.lines.some((l) => /^\s*healthcheck\b/.test(l));
    db = await createTestSchema();
    // The queue a deployment has (Terraform creates it); every role gets its URL and the emulator.
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName("argv") }));
    baseEnv = {
      DATABASE_URL: db.url,
      SQS_ENDPOINT: sqsEndpoint(),
      SQS_QUEUE_URL: queue.QueueUrl!,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: uniqueName("argv"),
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      TRIGGERS_DATA_DIR: "/tmp/triggers-test-unused",
    };
  });

  afterAll(async () => {
    for (const child of spawned) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    sqs?.destroy();
    await db?.drop();
  });

  test("the image runs the built CLI from its WORKDIR, and every task command is a sub-command of it", () => {
    expect(dockerWorkdir(REPO_ROOT)).toBe("/app");
    // node, its options (the young generation's size, see docs/performance.md "The young generation"), the CLI.
    expect(entrypoint).toEqual(["node", ...imageNodeOptions(REPO_ROOT), "dist/src/cli/main.js"]);
    expect(Object.keys(commands).sort()).toEqual(["api", "migrate", "scheduler", "worker"]);
    // A task command that repeated `node <script>` would run `main.js node main.js api`.
    for (const [role, command] of Object.entries(commands)) expect({ role, command }).toEqual({ role, command: [role] });
  });

  test("migrate runs to completion, twice (the schema is up to date the second time)", async () => {
    for (const round of [1, 2]) {
      const p = run([...entrypoint, ...commands.migrate!], baseEnv);
      const { code } = await within(p.exited, scaled(60_000), () => `migrate (round ${round}) did not finish:\n${p.lines.join("\n")}`);
      expect({ round, code, output: code === 0 ? "" : p.lines.join("\n") }).toEqual({ round, code: 0, output: "" });
      expect(p.lines.join("\n")).toMatch(/database is up to date/);
    }
  });

  test("keys list (the operator's one-off command override) runs to completion", async () => {
    // As `aws ecs run-task --overrides '{"containerOverrides":[{"command":["keys","list"]}]}'` does.
    const p = run([...entrypoint, "keys", "list", "--json"], baseEnv);
    const { code } = await within(p.exited, scaled(30_000), () => `keys list did not finish:\n${p.lines.join("\n")}`);
    expect({ code, output: code === 0 ? "" : p.lines.join("\n") }).toEqual({ code: 0, output: "" });
  });

  test.each([
    ["api", /"msg":"api listening"/],
    ["worker", /"msg":"metrics server listening"/],
    ["scheduler", /"msg":"metrics server listening"/],
  ])("%s starts, logs that it is listening, answers /healthz, and stops on SIGTERM with exit 0", async (role, ready) => {
    const port = await freePort();
    const metricsPort = await freePort();
    const p = run([...entrypoint, ...commands[role]!], { ...baseEnv, PORT: String(port), METRICS_PORT: String(metricsPort), WORKER_WAIT_SECONDS: "1", WORKER_RECEIVERS: "1" });
    await waitForLine(p, ready, scaled(45_000));
    // api: the load balancer's probe on PORT; worker and scheduler: METRICS_PORT.
    expect(await healthz(role === "api" ? port : metricsPort)).toBe(200);
    // The ECS container health check, run as ECS runs it, where the CLI has that command.
    if (cliHasHealthcheck) {
      const [kind, ...argv] = ecsHealthCheck();
      expect(kind).toBe("CMD");
      const check = run(argv, { PATH: process.env.PATH ?? "", METRICS_PORT: String(metricsPort) });
      const result = await within(check.exited, scaled(10_000), () => `healthcheck did not finish:\n${check.lines.join("\n")}`);
      expect({ role, healthcheck: result.code, output: result.code === 0 ? "" : check.lines.join("\n") }).toEqual({ role, healthcheck: 0, output: "" });
    }
    p.child.kill("SIGTERM");
    const exit = await within(p.exited, 15_000, () => `${role} did not stop within 15 s of SIGTERM:\n${p.lines.join("\n")}`);
    expect({ role, exit }).toEqual({ role, exit: { code: 0, signal: null } });
  });
});
