import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { CLI } from "../helpers/env";
import { freePort } from "../../src/dev/local-services";

/**
 * The README's walk-through, pasted as written: every shell block marked `<!-- walkthrough -->`
 * runs, in order, in one `bash` with `set -euo pipefail`, against the built CLI's `start` on a
 * fresh data dir (embedded PGlite, in-process SQS emulator, no Redis; nothing configured but
 * HOST, PORT and the data dir). The blocks run in a folder whose `.triggers` is that data dir, as
 * the README assumes (`cat .triggers/dev-api-key`). The one change the test makes is the
 * documented one: the port in the `BASE=` line. Every curl of the walk-through carries
 * `--fail-with-body`, so an HTTP error fails the script.
 */

const README = join(__dirname, "..", "..", "README.md");
const DOCUMENTED_BASE = "BASE=http://127.0.0.1:3000";
/** PGlite's initdb on a busy machine, the emulator and the migrations: generous, and still bounded. */
const START_MS = 90_000;
const SCRIPT_MS = 60_000;
jest.setTimeout(240_000);

let root: string;
let server: ChildProcess | undefined;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `triggers-readme-${process.pid}-`));
});

afterAll(() => {
  if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
    try {
      process.kill(server.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** The marked shell blocks, and how many shell blocks the "Walk-through" section holds in all. */
function walkthroughBlocks(readme: string): { marked: string[]; inSection: number } {
  const marked = [...readme.matchAll(/<!-- walkthrough -->\n```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const section = /\n## Walk-through\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? "";
  const inSection = [...section.matchAll(/```sh\n/g)].length;
  return { marked, inSection };
}

/** Starts `triggers start` and resolves once it prints where it runs. */
function startServer(port: number, dataDir: string): Promise<{ child: ChildProcess; exited: Promise<number | null>; lines: string[] }> {
  const child = spawn(process.execPath, [CLI, "start"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), TRIGGERS_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server = child;
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`start did not come up within ${START_MS} ms:\n${lines.join("\n")}`)), START_MS);
    const onLine = (line: string) => {
      lines.push(line);
      if (line.startsWith("Triggers is running on")) {
        clearTimeout(timer);
        resolve({ child, exited, lines });
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`start exited (${code}) before it was running:\n${lines.join("\n")}`));
    });
  });
}

/** Runs the script with bash in `cwd`; resolves with its exit code and output, bounded by SCRIPT_MS. */
function runBash(file: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // A fresh machine's tools: whatever PATH has, and this node first.
    const env = { PATH: [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter), HOME: cwd };
    const child = spawn("bash", [file], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      reject(new Error(`the walk-through did not finish within ${SCRIPT_MS} ms:\n${stdout}\n${stderr}`));
    }, SCRIPT_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("the README's marked blocks cover the whole walk-through section and its steps", () => {
  const readme = readFileSync(README, "utf8");
  const { marked, inSection } = walkthroughBlocks(readme);
  expect(marked.length).toBeGreaterThan(0);
  expect(marked).toHaveLength(inSection);
  const script = marked.join("\n");
  expect(script.split("\n").filter((l) => l.startsWith(DOCUMENTED_BASE))).toHaveLength(1);
  // Send, status, lease, ack with its lease, a subscription whose event matches its filter.
  for (const step of ['-X POST "$BASE/events"', '"$BASE/events/$ID"', '"$BASE/inbox?', '"$BASE/events/$ID/ack"', "lease_id", '-X POST "$BASE/subscriptions"', "subscription=billing"]) {
    expect([step, script.includes(step)]).toEqual([step, true]);
  }
  // No comment lines: zsh's interactive shell (macOS's default) runs `#` as a command.
  expect(script.split("\n").filter((l) => /(^|\s)#/.test(l))).toEqual([]);
  // Every HTTP call fails on an HTTP error.
  const curls = script.split("\n").filter((l) => /\bcurl\b/.test(l));
  expect(curls.length).toBeGreaterThan(0);
  for (const line of curls) expect([line, line.includes("--fail-with-body")]).toEqual([line, true]);
});

test("the walk-through runs top to bottom, as written, against a fresh `triggers start`", async () => {
  const readme = readFileSync(README, "utf8");
  const { marked } = walkthroughBlocks(readme);
  const port = await freePort();
  const dataDir = join(root, ".triggers"); // does not exist yet: `start` creates it
  // The documented variable, and nothing else, changes: the port.
  const blocks = marked.map((b) => b.split("\n").map((l) => (l.startsWith(DOCUMENTED_BASE) ? `BASE=http://127.0.0.1:${port}${l.slice(DOCUMENTED_BASE.length)}` : l)).join("\n"));
  const file = join(root, "walkthrough.sh");
  writeFileSync(file, ["set -euo pipefail", ...blocks].join("\n"));

  const s = await startServer(port, dataDir);
  const run = await runBash(file, root);
  const context = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}\n--- server\n${s.lines.slice(-20).join("\n")}`;
  if (run.code !== 0 || run.stderr !== "") throw new Error(`the walk-through failed:\n${context}`);

  // Both events were acknowledged with their leases: the first in `default`, the second in `billing`.
  const out = run.stdout.split("\n");
  const id = out[0]!;
  expect(id).toMatch(/^evt_\S+$/);
  const acked = [...run.stdout.matchAll(/\{"id":"(evt_[^"]+)","status":"acknowledged"/g)].map((m) => m[1]);
  expect(acked).toHaveLength(2);
  expect(acked[0]).toBe(id);
  expect(out).toContain("acknowledged");
  const paid = acked[1]!;
  expect(paid).not.toBe(id);

  // What the README says after it: `default` still holds order.paid as pending; billing is gone.
  const key = readFileSync(join(dataDir, "dev-api-key"), "utf8").trim();
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { Authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as any };
  };
  expect(await get(`/events/${id}`)).toMatchObject({ status: 200, body: { status: "acknowledged" } });
  expect(await get(`/events/${paid}`)).toMatchObject({ status: 200, body: { type: "order.paid", status: "pending" } });
  const subs = await get("/subscriptions");
  expect(JSON.stringify(subs.body)).not.toContain("billing");

  // Stop the server by its pid; it exits cleanly.
  process.kill(s.child.pid!, "SIGTERM");
  expect(await s.exited).toBe(0);
});
