/**
 * The CLI as the deployment runs it: the container health probe is cheap (it runs every few
 * seconds on a quarter vCPU next to the scheduler), and the one-off commands `migrate` and `keys`
 * never fall back to a throw-away embedded database when DATABASE_URL is missing.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, TEST_TIME_FACTOR } from "../helpers/env";
import { onlyOn } from "../helpers/harness";
import { dockerHealthcheck, ecsHealthCheck } from "../helpers/probe-commands";

jest.setTimeout(120_000);

const REPO_ROOT = join(__dirname, "..", "..");
/** CPU-seconds (user + system) one health probe may use, on the reference machine. */
const PROBE_CPU_SECONDS = 0.1;

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** User + system CPU-seconds of the command's process (bash's `times` for its children). */
  readonly cpuSeconds: number;
}

/**
 * Runs argv (argv[0] `node`: this test's Node binary) under bash, which reports the CPU its child
 * used with the `times` builtin on fd 3 after the child exits. Only PATH and `env` reach it.
 */
function run(argv: readonly string[], env: Record<string, string>, cwd: string, deadlineMs = 60_000): Promise<Ran> {
  const [program, ...args] = argv;
  if (program !== "node") throw new Error(`expected a node command, not ${argv.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", '"$@"; rc=$?; times >&3; exit $rc', "measure", process.execPath, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe", "pipe"],
    });
    const out: Record<"stdout" | "stderr" | "times", string> = { stdout: "", stderr: "", times: "" };
    child.stdout!.on("data", (d: Buffer) => (out.stdout += d));
    child.stderr!.on("data", (d: Buffer) => (out.stderr += d));
    (child.stdio[3] as NodeJS.ReadableStream).on("data", (d: Buffer) => (out.times += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${argv.join(" ")} did not finish within ${deadlineMs} ms:\n${out.stdout}${out.stderr}`));
    }, deadlineMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      // `times`: the shell's user and system time, then its children's ("0m0.052s 0m0.008s").
      const children = out.times.trim().split("\n")[1] ?? "";
      const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      if (seconds.length !== 2) return reject(new Error(`unreadable times output: ${JSON.stringify(out.times)}`));
      resolve({ code, stdout: out.stdout, stderr: out.stderr, cpuSeconds: Math.round((seconds[0]! + seconds[1]!) * 1000) / 1000 });
    });
  });
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

onlyOn("postgres", "spawns the built CLI, whose behaviour does not depend on the test store").describe("the CLI as deployed", () => {
  let server: Server;
  let healthy = 200;
  let port: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === "/healthz" ? healthy : 404, { "Content-Type": "application/json" }).end('{"status":"ok"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const probes = (): Array<[string, string[]]> => {
    const docker = dockerHealthcheck();
    const [kind, ...ecs] = ecsHealthCheck();
    expect(kind).toBe("CMD");
    return [
      ["Dockerfile HEALTHCHECK", docker],
      ["Terraform container healthCheck", ecs],
    ];
  };

  test(`the health probe (Dockerfile and Terraform) uses under ${PROBE_CPU_SECONDS} CPU-seconds × TEST_TIME_FACTOR (${TEST_TIME_FACTOR})`, async () => {
    healthy = 200;
    const bound = PROBE_CPU_SECONDS * TEST_TIME_FACTOR;
    for (const [where, argv] of probes()) {
      const runs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await run(argv, { METRICS_PORT: String(port) }, REPO_ROOT);
        expect({ where, code: r.code, stderr: r.stderr }).toEqual({ where, code: 0, stderr: "" });
        runs.push(r.cpuSeconds);
      }
      // The median of five, so one run slowed by a neighbour's burst does not decide.
      expect({ where, runs, median: median(runs) < bound }).toEqual({ where, runs, median: true });
    }
  });

  test("the health probe still fails on a non-2xx answer, a refused port and a bad METRICS_PORT", async () => {
    const [, argv] = probes()[0]!;
    healthy = 503;
    const unhealthy = await run(argv, { METRICS_PORT: String(port) }, REPO_ROOT);
    expect([unhealthy.code, unhealthy.stderr.trim()]).toEqual([1, "healthcheck: /healthz answered 503"]);
    healthy = 200;
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const refused = await run(argv, { METRICS_PORT: String(closed) }, REPO_ROOT);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^healthcheck: .*ECONNREFUSED.*\n$/)]);
    const bad = await run(argv, { METRICS_PORT: "http" }, REPO_ROOT);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, "healthcheck: METRICS_PORT must be a port number (1-65535)"]);
  });

  describe("migrate and keys without DATABASE_URL", () => {
    let cwd: string;
    beforeEach(() => {
      cwd = mkdtempSync(join(tmpdir(), "triggers-cli-"));
    });
    afterEach(() => rmSync(cwd, { recursive: true, force: true }));

    const commands = [["migrate"], ["keys", "list"], ["keys", "create", "--tenant", "acme", "--scopes", "inbox:read"], ["keys", "revoke", "key_x"]];

    /** Exits non-zero with one line naming DATABASE_URL, no stack trace, and leaves no database behind. */
    const expectRefused = async (args: string[], env: Record<string, string>, dataDir: string) => {
      const r = await run(["node", CLI, ...args], env, cwd);
      const what = `${args.join(" ")} with ${JSON.stringify(env)}`;
      expect({ what, code: r.code !== 0, lines: r.stderr.trimEnd().split("\n").length, stdout: r.stdout }).toEqual({ what, code: true, lines: 1, stdout: "" });
      expect(r.stderr).toMatch(/^triggers: .*DATABASE_URL/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect({ what, database: existsSync(join(dataDir, "pgdata")) }).toEqual({ what, database: false });
    };

    test("under NODE_ENV=production they refuse, with or without TRIGGERS_DATA_DIR", async () => {
      for (const args of commands) await expectRefused(args, { NODE_ENV: "production" }, join(cwd, ".triggers"));
      const dir = join(cwd, "explicit");
      for (const args of commands) await expectRefused(args, { NODE_ENV: "production", TRIGGERS_DATA_DIR: dir }, dir);
    });

    test("outside production they refuse unless TRIGGERS_DATA_DIR names the embedded database explicitly", async () => {
      for (const args of commands) await expectRefused(args, {}, join(cwd, ".triggers"));
      expect(existsSync(join(cwd, ".triggers"))).toBe(false);
      // Named explicitly: the embedded database there is migrated, and keys act on it.
      const dir = join(cwd, "explicit");
      const migrated = await run(["node", CLI, "migrate"], { TRIGGERS_DATA_DIR: dir }, cwd);
      expect({ code: migrated.code, stderr: migrated.stderr }).toEqual({ code: 0, stderr: "" });
      expect(migrated.stdout).toMatch(/database is up to date/);
      expect(existsSync(join(dir, "pgdata"))).toBe(true);
      const listed = await run(["node", CLI, "keys", "list", "--json"], { TRIGGERS_DATA_DIR: dir }, cwd);
      expect({ code: listed.code, stdout: listed.stdout.trim(), stderr: listed.stderr }).toEqual({ code: 0, stdout: "[]", stderr: "" });
    });
  });
});
