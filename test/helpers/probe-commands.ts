/**
 * The container health probe's command as the deployment runs it, read from where it is declared:
 * the Dockerfile's HEALTHCHECK and the ECS container health check of terraform/modules/triggers.
 * Read as text (not through @cdktf/hcl2json: its Go runtime keeps a lone Jest process from exiting).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const REPO_ROOT = join(__dirname, "..", "..");
const MODULE_DIR = join(REPO_ROOT, "terraform", "modules", "triggers");

/** The Dockerfile's HEALTHCHECK command in exec form (`CMD [...]`, continuation lines joined): the argv after CMD. */
export function dockerHealthcheck(repoRoot = REPO_ROOT): string[] {
  const text = readFileSync(join(repoRoot, "Dockerfile"), "utf8").replace(/\\\r?\n/g, " ");
  const line = text.split("\n").filter((l) => /^\s*HEALTHCHECK\s/i.test(l)).pop();
  const cmd = line === undefined ? undefined : /\sCMD\s+(\[.*\])\s*$/i.exec(line)?.[1];
  if (!cmd) throw new Error("the Dockerfile has no HEALTHCHECK CMD in exec form");
  return JSON.parse(cmd) as string[];
}

/**
 * The ECS container health check's command (local.health_checks in ecs.tf), with var.cli_script
 * replaced by its default: ["CMD", "node", "<script>", "healthcheck"].
 */
export function ecsHealthCheck(): string[] {
  const ecs = readFileSync(join(MODULE_DIR, "ecs.tf"), "utf8");
  const vars = readFileSync(join(MODULE_DIR, "variables.tf"), "utf8");
  const script = /variable "cli_script"[^}]*?default\s*=\s*("[^"]*")/s.exec(vars)?.[1];
  const command = /^\s*command\s*=\s*(\["CMD".*\])\s*$/m.exec(ecs)?.[1];
  if (!script || !command) throw new Error("the container health check or var.cli_script's default was not found");
  return JSON.parse(command.replace(/var\.cli_script/g, script)) as string[];
}
