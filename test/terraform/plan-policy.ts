/**
 * Policy checks on a Terraform plan (`terraform show -json`), the way a policy tool or a reviewer
 * reads it: what each ECS task runs, with which environment and secrets, and which IAM actions
 * the module grants. Every rule returns readable violations instead of throwing, so a test can
 * break a plan on purpose and see the rule report it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { VARIABLES } from "../../src/config";

export interface PlanResource {
  address: string;
  type: string;
  mode?: string;
  change: { actions: string[]; after: Record<string, unknown> | null; after_unknown?: Record<string, unknown> };
}

interface StateModule {
  resources?: Array<{ address: string; type: string; mode: string; values: Record<string, unknown> }>;
  child_modules?: StateModule[];
}

export interface Plan {
  resource_changes: PlanResource[];
  prior_state?: { values?: { root_module?: StateModule } };
}

/** What the policy compares the plan with: the image and the code it runs. */
export interface PolicyInputs {
  /** The Dockerfile's ENTRYPOINT (node, options, CLI script). */
  entrypoint: string[];
  /** Sub-commands the CLI (src/cli/main.ts) accepts. */
  cliCommands: string[];
  /** Environment variable names src/config.ts reads. */
  configNames: string[];
  /** IAM actions the module may grant. */
  allowedActions: string[];
  /** Only policy documents whose address starts with this are checked (e.g. "module.triggers."). */
  iamAddressPrefix?: string;
}

/** The long-running roles and the one-off migrate task, each a task definition family "<name>-<role>". */
export const ROLES = ["api", "worker", "scheduler", "migrate"] as const;

/**
 * Containers beside a role's own (name = role): the metrics collector (metrics-shipping.tf), with
 * the environment names it may have. It must not be essential (its end must not stop the role),
 * must take no secrets and must scrape only its own task (127.0.0.1).
 */
export const SIDECARS: Readonly<Record<string, readonly string[]>> = {
  "metrics-collector": ["AOT_CONFIG_CONTENT"],
};

/** Names whose value is a credential (or holds one): they must come through `secrets`. */
const SECRET_NAMES = /^(REDIS_URL|DATABASE_PASSWORD|PGPASSWORD|.*_TOKEN|.*_SECRET|.*_PASSWORD)$/;
/** A URL with a password in it (scheme://user:password@host). */
const CREDENTIAL_URL = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]+@/i;

/**
 * Sub-commands of the CLI: the entry point (src/cli/main.ts) dispatches `healthcheck` itself
 * (`argv[0] === "x"`) and the rest in src/cli/commands.ts (`case "x":` labels, `command === "x"` tests).
 */
export function cliCommands(repoRoot: string): string[] {
  const src = ["main.ts", "commands.ts"].map((f) => readFileSync(join(repoRoot, "src", "cli", f), "utf8")).join("\n");
  const names = [...src.matchAll(/case "([a-z-]+)":/g), ...src.matchAll(/(?:command|argv\[0\]) === "([a-z-]+)"/g)].map((m) => m[1]!);
  return [...new Set(names)].filter((n) => n !== "help" && n !== "--help");
}

/** Environment variable names src/config.ts reads: the names its VARIABLES declare. */
export function configNames(): string[] {
  return Object.keys(VARIABLES);
}

/** Prometheus metric names the code registers (`name: "triggers_…"` in src/**). */
export function registeredMetrics(repoRoot: string): string[] {
  const files = readdirSync(join(repoRoot, "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  const src = files.map((f) => readFileSync(join(repoRoot, "src", f), "utf8")).join("\n");
  return [...new Set([...src.matchAll(/name: "(triggers_[a-z0-9_]+)"/g)].map((m) => m[1]!))];
}

interface ContainerDefinition {
  name?: string;
  essential?: boolean;
  command?: string[];
  entryPoint?: string[];
  environment?: Array<{ name: string; value: string }>;
  secrets?: Array<{ name: string; valueFrom: string }>;
  healthCheck?: { command?: string[] };
  readonlyRootFilesystem?: boolean;
}

/** The planned task definitions by role, with their container definitions parsed (or why they cannot be). */
export function taskDefinitions(plan: Plan): Map<string, { address: string; containers?: ContainerDefinition[]; unreadable?: string }> {
  const out = new Map<string, { address: string; containers?: ContainerDefinition[]; unreadable?: string }>();
  for (const r of plan.resource_changes) {
    if (r.type !== "aws_ecs_task_definition" || r.change.actions.includes("delete")) continue;
    const role = /\["(\w+)"\]$/.exec(r.address)?.[1] ?? String(r.change.after?.family ?? r.address);
    const raw = r.change.after?.container_definitions;
    if (typeof raw !== "string") {
      out.set(role, { address: r.address, unreadable: r.change.after_unknown?.container_definitions === true ? "unknown until apply" : "absent" });
      continue;
    }
    out.set(role, { address: r.address, containers: JSON.parse(raw) as ContainerDefinition[] });
  }
  return out;
}

/** Every planned aws_iam_policy_document (read during plan or deferred to apply): address -> statements. */
export function policyDocuments(plan: Plan): Map<string, Array<Record<string, unknown>>> {
  const out = new Map<string, Array<Record<string, unknown>>>();
  for (const r of plan.resource_changes) {
    if (r.type === "aws_iam_policy_document" && r.change.after) out.set(r.address, (r.change.after.statement as Array<Record<string, unknown>>) ?? []);
  }
  const walk = (m: StateModule | undefined): void => {
    for (const r of m?.resources ?? []) {
      if (r.type === "aws_iam_policy_document" && r.mode === "data" && !out.has(r.address)) out.set(r.address, (r.values.statement as Array<Record<string, unknown>>) ?? []);
    }
    for (const c of m?.child_modules ?? []) walk(c);
  };
  walk(plan.prior_state?.values?.root_module);
  return out;
}

/** All violations of the policy in `plan`; empty when it passes. */
export function checkPlan(plan: Plan, inputs: PolicyInputs): string[] {
  const problems: string[] = [];
  const defs = taskDefinitions(plan);
  const script = inputs.entrypoint.at(-1);

  for (const role of ROLES) {
    const def = defs.get(role);
    if (!def) {
      problems.push(`${role}: no task definition in the plan`);
      continue;
    }
    if (!def.containers) {
      problems.push(`${def.address}: container_definitions ${def.unreadable}, so the plan does not show what it runs`);
      continue;
    }
    if (!def.containers.some((c) => c.name === role)) problems.push(`${def.address}: no container named ${role}`);
    for (const c of def.containers) {
      const where = `${def.address} container ${c.name}`;
      if (c.name !== role) {
        const allowed = SIDECARS[c.name ?? ""];
        if (!allowed) {
          problems.push(`${where}: not the role's container and not a known sidecar (${Object.keys(SIDECARS).join(", ")})`);
          continue;
        }
        if (role === "migrate") problems.push(`${where}: the one-off migrate task runs no sidecar`);
        if (c.essential !== false) problems.push(`${where}: a sidecar must not be essential`);
        if ((c.secrets ?? []).length > 0) problems.push(`${where}: a sidecar takes no secrets`);
        if (c.command !== undefined || c.entryPoint !== undefined) problems.push(`${where}: a sidecar runs its image's own command`);
        for (const e of c.environment ?? []) {
          if (!allowed.includes(e.name)) problems.push(`${where}: environment ${e.name} is not one of ${allowed.join(", ")}`);
          if (CREDENTIAL_URL.test(String(e.value))) problems.push(`${where}: environment ${e.name} holds a URL with a password`);
        }
        const targets = [...String((c.environment ?? []).find((e) => e.name === "AOT_CONFIG_CONTENT")?.value ?? "").matchAll(/^\s*-?\s*"?(\d+\.\d+\.\d+\.\d+|[a-z0-9.-]+):(\d+)"?\s*$/gm)].map((m) => m[1]);
        for (const t of targets.filter((t) => t !== "127.0.0.1")) problems.push(`${where}: scrapes ${t}, not its own task`);
        continue;
      }
      // The command is appended to the image's ENTRYPOINT (the CLI): only the role's sub-command.
      if (c.entryPoint !== undefined && JSON.stringify(c.entryPoint) !== JSON.stringify(inputs.entrypoint)) {
        problems.push(`${where}: entryPoint ${JSON.stringify(c.entryPoint)} replaces the image's ${JSON.stringify(inputs.entrypoint)}`);
      }
      const command = c.command ?? [];
      if (JSON.stringify(command) !== JSON.stringify([role])) problems.push(`${where}: command ${JSON.stringify(command)} is not [${JSON.stringify(role)}]`);
      for (const sub of command.slice(0, 1)) {
        if (!inputs.cliCommands.includes(sub)) problems.push(`${where}: command ${JSON.stringify(sub)} is not a sub-command of src/cli/main.ts`);
      }
      // A health check that runs the CLI must name a sub-command it has.
      const hc = c.healthCheck?.command ?? [];
      if (hc[1] === "node" && hc[2] === script && !inputs.cliCommands.includes(hc[3] ?? "")) {
        problems.push(`${where}: health check ${JSON.stringify(hc)} runs an unknown CLI sub-command`);
      }
      for (const e of c.environment ?? []) {
        if (!inputs.configNames.includes(e.name)) problems.push(`${where}: environment ${e.name} is not read by src/config.ts`);
        if (SECRET_NAMES.test(e.name)) problems.push(`${where}: ${e.name} is a credential in plain environment; use secrets`);
        if (CREDENTIAL_URL.test(String(e.value))) problems.push(`${where}: environment ${e.name} holds a URL with a password; use secrets`);
      }
      for (const s of c.secrets ?? []) {
        if (!inputs.configNames.includes(s.name)) problems.push(`${where}: secret ${s.name} is not read by src/config.ts`);
        if (!/^arn:aws[a-z-]*:(ssm|secretsmanager):/.test(s.valueFrom)) problems.push(`${where}: secret ${s.name} comes from ${s.valueFrom}, not an SSM parameter or Secrets Manager ARN`);
      }
      const names = [...(c.environment ?? []).map((e) => e.name), ...(c.secrets ?? []).map((s) => s.name)];
      for (const dup of names.filter((n, i) => names.indexOf(n) !== i)) problems.push(`${where}: ${dup} is set twice`);
    }
  }

  const docs = policyDocuments(plan);
  if (docs.size === 0) problems.push("no aws_iam_policy_document in the plan");
  for (const [address, statements] of docs) {
    if (!address.startsWith(inputs.iamAddressPrefix ?? "")) continue;
    for (const s of statements) {
      if (s.not_actions !== undefined && (s.not_actions as unknown[] | null)?.length) problems.push(`${address}: NotAction is not allowed`);
      if ((s.effect ?? "Allow") !== "Allow") continue;
      for (const action of (s.actions as string[] | null) ?? []) {
        if (!inputs.allowedActions.includes(action)) problems.push(`${address} ${String(s.sid ?? "")}: action ${action} is not in the allowed list`);
      }
    }
  }
  return problems;
}
