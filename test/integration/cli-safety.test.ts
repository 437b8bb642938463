/**
 * The CLI as the deployment runs it: the container health probe is cheap (it runs every few
 * seconds on a quarter vCPU next to the scheduler: it loads two of the project's files and no
 * package), and the one-off commands `migrate` and `keys` never fall back to a throw-away embedded
 * database when DATABASE_URL is missing.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI } from "../helpers/env";
import { onlyOn } from "../helpers/harness";
import { dockerHealthcheck, ecsHealthCheck } from "../helpers/probe-commands";

jest.setTimeout(120_000);

const REPO_ROOT = join(__dirname, "..", "..");
interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv (argv[0] `node`: this test's Node binary). Only PATH and `env` reach it. */
function run(argv: readonly string[], env: Record<string, string>, cwd: string, deadlineMs = 60_000): Promise<Ran> {
  const [program, ...args] = argv;
  if (program !== "node") throw new Error(`expected a node command, not ${argv.join(" ")}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const out = { stdout: "", stderr: "" };
    child.stdout.on("data", (d: Buffer) => (out.stdout += d));
    child.stderr.on("data", (d: Buffer) => (out.stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${argv.join(" ")} did not finish within ${deadlineMs} ms:\n${out.stdout}${out.stderr}`));
    }, deadlineMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, ...out });
    });
  });
}

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

  // What the probe costs is what it loads: Node's start plus two small files, no package (a
  // validation library or the app's modules would multiply its CPU on a quarter vCPU). Checked by
  // listing the modules the process loaded, which does not depend on the machine's speed.
  test("the health probe (Dockerfile and Terraform) loads the CLI's entry and the probe, nothing else", async () => {
    healthy = 200;
    const dir = mkdtempSync(join(tmpdir(), "probe-modules-"));
    try {
      const hook = join(dir, "hook.js");
      const list = join(dir, "loaded.json");
      writeFileSync(
        hook,
        `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache).filter((f) => f !== ${JSON.stringify(hook)}))));`,
      );
      for (const [where, argv] of probes()) {
        const r = await run(argv, { METRICS_PORT: String(port), NODE_OPTIONS: `--require ${hook}` }, REPO_ROOT);
        expect({ where, code: r.code, stderr: r.stderr }).toEqual({ where, code: 0, stderr: "" });
        const loaded = (JSON.parse(readFileSync(list, "utf8")) as string[]).map((f) => f.slice(REPO_ROOT.length + 1)).sort();
        expect({ where, loaded }).toEqual({ where, loaded: ["dist/src/cli/healthcheck.js", "dist/src/cli/main.js"] });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
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
