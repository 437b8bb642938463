/**
 * What the container image runs, read from the Dockerfile: the benches start servers with the
 * image's node options, and test/integration/image-argv.test.ts runs its ENTRYPOINT as is.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** ENTRYPOINT of the Dockerfile's last stage, in exec form (the only form that takes a command). */
export function dockerEntrypoint(repoRoot: string): string[] {
  const lines = readFileSync(join(repoRoot, "Dockerfile"), "utf8").split("\n");
  const last = lines.filter((l) => /^\s*ENTRYPOINT\s/i.test(l)).pop();
  if (!last) throw new Error("the Dockerfile has no ENTRYPOINT");
  const argv = JSON.parse(last.replace(/^\s*ENTRYPOINT\s+/i, "")) as unknown;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) throw new Error(`ENTRYPOINT is not in exec form: ${last}`);
  return argv as string[];
}

/** The Dockerfile's WORKDIR of its last stage: where the ENTRYPOINT's relative paths resolve. */
export function dockerWorkdir(repoRoot: string): string {
  const text = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
  const last = text.split(/^FROM\s/im).pop() ?? "";
  return /^\s*WORKDIR\s+(\S+)/im.exec(last)?.[1] ?? "/";
}

/** The options the ENTRYPOINT gives node before the script (e.g. `--max-semi-space-size=32`); each must be one `--name=value` argument. */
export function imageNodeOptions(repoRoot: string): string[] {
  const [program, ...rest] = dockerEntrypoint(repoRoot);
  if (program !== "node") throw new Error(`the image runs ${program}, not node`);
  const script = rest.findIndex((a) => !a.startsWith("-"));
  return script === -1 ? rest : rest.slice(0, script);
}
