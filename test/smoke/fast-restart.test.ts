import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/dev/local-services";
import { deadline, waitFor } from "../helpers/deadlines";

/**
 * `npm start` and `npm run build` build only what changed (.ci/build-if-changed.js): on a copy of
 * the project (so the suite's own dist/ is never rebuilt under other tests), a first build runs
 * prisma generate and swc; `npm start` on the unchanged tree then builds nothing and answers
 * /healthz (the time is printed, not asserted: the machine may be shared); touching a source file
 * runs swc alone, touching the Prisma schema runs both.
 */
jest.setTimeout(deadline(240_000));

const REPO = join(__dirname, "..", "..");
let root: string;
const groups: number[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `triggers-build-${process.pid}-`));
  for (const p of [".ci/build-if-changed.js", "package.json", ".swcrc", "prisma.config.ts", "prisma", "workers", "bench"]) cpSync(join(REPO, p), join(root, p), { recursive: true });
  cpSync(join(REPO, "src"), join(root, "src"), { recursive: true, filter: (p) => !p.includes(join("src", "generated")) });
  symlinkSync(realpathSync(join(REPO, "node_modules")), join(root, "node_modules"));
});

afterAll(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** `npm run build` in the copy: what it said it built. */
function build(): string {
  const r = spawnSync("npm", ["run", "-s", "build"], { cwd: root, encoding: "utf8", env: { ...process.env }, timeout: deadline(120_000) });
  if (r.status !== 0) throw new Error(`build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return (r.stderr.match(/^build: .*$/gm) ?? []).join("\n");
}

const mtime = (p: string): number => statSync(join(root, p)).mtimeMs;
const outputs = () => ({ stamp: mtime("dist/.build-stamp.json"), cli: mtime("dist/src/cli/main.js"), client: mtime("src/generated/prisma/client.ts") });
/** Moves a file's mtime forward, as an editor's save would. */
const touch = (p: string): void => utimesSync(join(root, p), new Date(), new Date(Date.now() + 5000));

/** `npm start` in the copy until /healthz answers; then SIGTERM to its process group. Resolves with the ms to /healthz and the output. */
async function startOnce(dataDir: string): Promise<{ ms: number; output: string }> {
  const port = await freePort();
  const started = performance.now();
  const child: ChildProcess = spawn("npm", ["run", "-s", "start"], {
    cwd: root,
    detached: true, // its own process group: npm, the shell and node stop together
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), HOST: "127.0.0.1", PORT: String(port), TRIGGERS_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  groups.push(child.pid!);
  let output = "";
  child.stdout!.on("data", (c) => (output += String(c)));
  child.stderr!.on("data", (c) => (output += String(c)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
        return (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: "npm start answering /healthz" },
    );
    return { ms: Math.round(performance.now() - started), output };
  } finally {
    process.kill(-child.pid!, "SIGTERM");
    await exited;
  }
}

test("the first build runs both steps; npm start on the unchanged tree builds nothing; a touched source runs swc, a touched schema both", async () => {
  expect(build()).toMatch(/^build: prisma generate .*\nbuild: swc /);
  const built = outputs();

  const dataDir = join(root, "data");
  const first = await startOnce(dataDir);
  const restart = await startOnce(dataDir);
  process.stdout.write(`npm start to /healthz on an unchanged tree: first run ${first.ms} ms, restart ${restart.ms} ms\n`);
  for (const run of [first, restart]) expect(run.output).not.toMatch(/^build: /m);
  expect(outputs()).toEqual(built);
  expect(build()).toBe("");

  touch("src/errors.ts");
  expect(build()).toMatch(/^build: swc /);
  const afterSource = outputs();
  expect(afterSource.client).toBe(built.client);
  expect(afterSource.cli).toBeGreaterThan(built.cli);
  expect(afterSource.stamp).toBeGreaterThan(built.stamp);

  touch("prisma/schema.prisma");
  expect(build()).toMatch(/^build: prisma generate .*\nbuild: swc /);
  expect(outputs().client).toBeGreaterThan(built.client);
  expect(build()).toBe("");

  // A deleted dist/ (the stamp with it) rebuilds everything.
  rmSync(join(root, "dist"), { recursive: true });
  expect(build()).toMatch(/^build: prisma generate .*\nbuild: swc /);
  expect(readFileSync(join(root, "dist/src/cli/main.js"), "utf8").length).toBeGreaterThan(0);
});
