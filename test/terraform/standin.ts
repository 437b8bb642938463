/**
 * The schema-only Terraform stand-in (shared/tools/terraform-standin): real `terraform` against the
 * real provider schemas, no downloads, no AWS calls. Tests using it skip, naming what is missing,
 * when the terraform CLI or the stand-in is absent.
 *
 * TERRAFORM_STANDIN: path of the stand-in's `run` script (default: shared/tools/terraform-standin/run
 * next to the checkout or one level above it).
 */
import { deadline } from "../helpers/deadlines";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { REPO_ROOT } from "./load-hcl";

const STANDIN = [
  process.env.TERRAFORM_STANDIN,
  resolve(REPO_ROOT, "..", "shared", "tools", "terraform-standin", "run"),
  resolve(REPO_ROOT, "..", "..", "shared", "tools", "terraform-standin", "run"),
].find((p): p is string => typeof p === "string" && p !== "" && existsSync(p));

const terraformOnPath = spawnSync("terraform", ["version"], { stdio: "ignore", env: { ...process.env, CHECKPOINT_DISABLE: "1" } }).error === undefined;
const missing = [!terraformOnPath && "the terraform CLI (not on PATH)", !STANDIN && "the terraform stand-in (set TERRAFORM_STANDIN to its run script)"].filter(Boolean);

/** `describe` when terraform and the stand-in are there, else `describe.skip`. */
export const describeTf = missing.length === 0 ? describe : describe.skip;

/** A describe title that says why it was skipped. */
export function label(title: string): string {
  if (missing.length === 0) return title;
  console.warn(`${title}: skipped, missing ${missing.join(" and ")}`);
  return `${title} (skipped: missing ${missing.join(" and ")})`;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One stand-in run (init + the command) in a copy of the root; async so Jest's timers keep working. */
export function standin(args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(STANDIN!, args, { cwd: REPO_ROOT, env: { ...process.env, CHECKPOINT_DISABLE: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), deadline(480_000));
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

export function checkRan(run: Run, what: string): void {
  if (/skipped/.test(run.stdout) && run.stdout.length < 200) throw new Error(`${what}: the stand-in skipped: ${run.stdout}`);
  if (run.code !== 0) throw new Error(`${what} failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
}

/** A folder's path relative to the repository root, as the stand-in takes it. */
export const rel = (dir: string): string => dir.slice(REPO_ROOT.length + 1);
