/**
 * The production image's file set, rebuilt without Docker: the Dockerfile's `deps` stage RUN lines
 * run as written in a temporary folder (with a private npm cache, so their `npm cache clean` touches
 * nothing else), next to the built dist/ and prisma/ the runtime stage copies. PGlite, its Prisma
 * adapter, fauxqs and fastify (only `start` and `sqs-emulator` load them) and Prisma's other
 * query compilers must be gone, and every production role must still start from that folder:
 * test/integration/image-argv.test.ts runs in a child Jest with IMAGE_ARGV_ROOT pointing at it.
 *
 * Needs the npm registry (the stage runs `npm ci`, as the image build does): without it the test
 * fails, with npm's error, like the build would.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onlyOn } from "../helpers/harness";
import { REPO_ROOT } from "../terraform/load-hcl";

jest.setTimeout(600_000);

/** The `deps` stage of the Dockerfile: its COPY and RUN instructions, continuation lines joined. */
function depsStage(): { copies: string[]; runs: string[] } {
  const text = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^FROM\s.*\sAS deps\s*$/i.test(l));
  if (start === -1) throw new Error("the Dockerfile has no `deps` stage");
  const end = lines.findIndex((l, i) => i > start && /^FROM\s/i.test(l));
  const stage = lines.slice(start + 1, end === -1 ? undefined : end).map((l) => l.replace(/\s+/g, " ").trim());
  return {
    copies: stage.filter((l) => /^COPY\s/i.test(l)),
    runs: stage.filter((l) => /^RUN\s/i.test(l)).map((l) => l.replace(/^RUN\s+/i, "")),
  };
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn("bash", ["-c", command], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", fail);
    child.on("close", (code) => done({ code, output }));
  });
}

/** Kilobytes under `dir` (du -sk). */
async function sizeKb(dir: string): Promise<number> {
  const { output } = await sh(`du -sk ${JSON.stringify(dir)}`, dir, process.env);
  return Number(output.split(/\s/)[0]);
}

onlyOn("postgres", "the roles reach the test Postgres like image-argv.test.ts").describe("the production image's slim file set", () => {
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "image-slim-"));
    const { copies, runs } = depsStage();
    expect(copies).toEqual(["COPY package.json package-lock.json ./"]);
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(REPO_ROOT, f), join(root, f));
    const env = { ...process.env, npm_config_cache: join(root, ".npm-cache"), npm_config_update_notifier: "false" };
    for (const command of runs) {
      const r = await sh(command, root, env);
      if (r.code !== 0) throw new Error(`the deps stage failed (exit ${r.code}): ${command}\n${r.output}`);
    }
    rmSync(join(root, ".npm-cache"), { recursive: true, force: true });
    // What the runtime stage copies from the build stage: the compiled src and workers, prisma/.
    for (const d of ["src", "workers"]) cpSync(join(REPO_ROOT, "dist", d), join(root, "dist", d), { recursive: true });
    cpSync(join(REPO_ROOT, "prisma"), join(root, "prisma"), { recursive: true });
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test("leaves out the development-only packages and Prisma's other query compilers", async () => {
    const modules = join(root, "node_modules");
    for (const pkg of ["@electric-sql/pglite", "pglite-prisma-adapter", "fauxqs", "fastify", "prisma", "typescript"]) {
      expect({ pkg, installed: existsSync(join(modules, pkg)) }).toEqual({ pkg, installed: false });
    }
    expect(readdirSync(join(modules, "@prisma", "client", "runtime")).sort()).toEqual([
      "client.js",
      "query_compiler_fast_bg.postgresql.js",
      "query_compiler_fast_bg.postgresql.wasm-base64.js",
    ]);
    // What the generated client loads is what stayed.
    const generated = readdirSync(join(root, "dist", "src", "generated", "prisma"), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".js"))
      .map((f) => readFileSync(join(root, "dist", "src", "generated", "prisma", f), "utf8"))
      .join("\n");
    for (const m of generated.matchAll(/@prisma\/client\/runtime\/([\w.-]+)/g)) {
      const file = m[1]!.endsWith(".js") ? m[1]! : `${m[1]}.js`;
      if (file === "index-browser.js") continue; // the browser build's, never loaded by Node
      expect({ file, present: existsSync(join(modules, "@prisma", "client", "runtime", file)) }).toEqual({ file, present: true });
    }
    console.log(`slim file set: node_modules ${Math.round((await sizeKb(modules)) / 1024)} MB, dist ${Math.round((await sizeKb(join(root, "dist"))) / 1024)} MB`);
  });

  test("every production role starts from it (image-argv.test.ts with IMAGE_ARGV_ROOT)", async () => {
    const results = join(root, "image-argv.json");
    const r = await sh(
      `npx jest test/integration/image-argv.test.ts --json --outputFile=${JSON.stringify(results)} --selectProjects postgres`,
      REPO_ROOT,
      // A run id of its own: the child's global setup and teardown start and stop an SQS emulator
      // recorded in a state file named by it, which must not be this run's.
      { ...process.env, IMAGE_ARGV_ROOT: root, JEST_RUN_ID: `image-slim-${process.pid}` },
    );
    const summary = existsSync(results)
      ? (JSON.parse(readFileSync(results, "utf8")) as { numPassedTests: number; numFailedTests: number; numPendingTests: number })
      : undefined;
    expect({ code: r.code, failed: summary?.numFailedTests, skipped: summary?.numPendingTests, output: r.code === 0 ? "" : r.output }).toEqual({
      code: 0,
      failed: 0,
      skipped: 0,
      output: "",
    });
    // migrate, keys list, api, worker, scheduler and the argv checks all ran.
    expect(summary!.numPassedTests).toBeGreaterThanOrEqual(6);
  });
});
