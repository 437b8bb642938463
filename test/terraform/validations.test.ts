/**
 * The module's variable validations, run by real Terraform: variables.tf alone is copied into a
 * temporary root (no resources, so no provider is needed) and planned with each case's values.
 * A value AWS would refuse at apply time (RDS/ElastiCache names, Fargate sizes, log retention)
 * must be refused at plan time instead. Skips when the terraform CLI is not on PATH.
 */
import { deadline } from "../helpers/deadlines";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODULE_DIR, REPO_ROOT } from "./load-hcl";

const ENV = { ...process.env, CHECKPOINT_DISABLE: "1", TF_CLI_CONFIG_FILE: "/dev/null", TF_IN_AUTOMATION: "1" };
const terraformOnPath = spawnSync("terraform", ["version"], { stdio: "ignore", env: ENV }).error === undefined;
const describeTf = terraformOnPath ? describe : describe.skip;
if (!terraformOnPath) console.warn("test/terraform/validations.test.ts skipped: the terraform CLI is not on PATH");

jest.setTimeout(deadline(120_000));

/** What every plan needs: the variables without defaults. */
const REQUIRED = {
  vpc_id: "vpc-0123",
  private_subnet_ids: ["subnet-a", "subnet-b"],
  public_subnet_ids: ["subnet-c", "subnet-d"],
  certificate_arn: "arn:aws:acm:eu-west-1:123456789012:certificate/x",
  image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/triggers:1.0.0",
};

let dir: string;

beforeAll(() => {
  if (!terraformOnPath) return;
  dir = mkdtempSync(join(tmpdir(), "tf-validations-"));
  copyFileSync(join(MODULE_DIR, "variables.tf"), join(dir, "variables.tf"));
  const init = spawnSync("terraform", ["init", "-backend=false", "-input=false", "-no-color"], { cwd: dir, env: ENV, encoding: "utf8" });
  if (init.status !== 0) throw new Error(`terraform init failed: ${init.stdout}${init.stderr}`);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Plans with REQUIRED plus `vars`; returns the error text ("" when the plan succeeds). */
function planErrors(vars: Record<string, unknown>): string {
  const file = join(dir, "case.tfvars.json");
  writeFileSync(file, JSON.stringify({ ...REQUIRED, ...vars }));
  const res = spawnSync("terraform", ["plan", "-input=false", "-no-color", "-lock=false", `-var-file=${file}`], { cwd: dir, env: ENV, encoding: "utf8" });
  return res.status === 0 ? "" : `${res.stdout}${res.stderr}`;
}

describeTf("variable validations (terraform plan of variables.tf)", () => {
  test("the defaults plan", () => {
    expect(planErrors({})).toBe("");
  });

  test.each([
    ["a--b", false],
    ["ab-", false],
    ["1ab", false],
    ["Ab", false],
    ["a_b", false],
    ["a", false],
    ["abcdefghijklmnopqrstuvwxy", false], // 25 characters
    ["ab", true],
    ["triggers-prod-2", true],
    ["abcdefghijklmnopqrstuvwx", true], // 24 characters
  ])("name = %j is accepted: %s (RDS and ElastiCache: no '--', no trailing '-', starts with a letter)", (name, ok) => {
    const errors = planErrors({ name });
    expect({ name, accepted: errors === "" }).toEqual({ name, accepted: ok });
    if (!ok) expect(errors).toContain("name must be");
  });

  test.each([
    [1, true],
    [30, true],
    [3653, true],
    [0, true], // never expire
    [2, false],
    [31, false],
    [10000, false],
  ])("log_retention_days = %d is accepted: %s (the values CloudWatch Logs takes)", (days, ok) => {
    expect({ days, accepted: planErrors({ log_retention_days: days }) === "" }).toEqual({ days, accepted: ok });
  });

  test.each([
    ["api", { cpu: 256, memory: 512 }, true],
    ["api", { cpu: 512, memory: 4096 }, true],
    ["worker", { cpu: 8192, memory: 20480 }, true],
    ["api", { cpu: 256, memory: 4096 }, false],
    ["worker", { cpu: 512, memory: 512 }, false],
    ["scheduler", { cpu: 300, memory: 1024 }, false],
    ["migrate", { cpu: 1024, memory: 1536 }, false],
    ["worker", { cpu: 8192, memory: 18432 }, false], // 8 vCPU: 4 GiB steps
  ])("%s = %j is a Fargate size: %s", (role, size, ok) => {
    const errors = planErrors({ [role]: size });
    expect({ role, size, accepted: errors === "" }).toEqual({ role, size, accepted: ok });
    if (!ok) expect(errors).toContain("Fargate");
  });

  test.each([
    ["api", { min_count: 3, max_count: 2 }, false],
    ["worker", { min_count: 5, max_count: 4 }, false],
    ["worker", { min_count: -1, max_count: 4 }, false],
    ["api", { min_count: 2, max_count: 2 }, true],
    ["worker", { min_count: 0, max_count: 4 }, true],
  ])("%s autoscaling bounds %j accepted: %s (min <= max)", (role, bounds, ok) => {
    expect({ role, bounds, accepted: planErrors({ [role]: bounds }) === "" }).toEqual({ role, bounds, accepted: ok });
  });

  test.each([
    [{ aurora_min_capacity: 0 }, true], // scale to zero
    [{ aurora_min_capacity: 0.75 }, false],
    [{ aurora_max_capacity: 0.5 }, false],
    [{ aurora_max_capacity: 512 }, false],
  ])("Aurora capacity %j accepted: %s", (vars, ok) => {
    expect({ vars, accepted: planErrors(vars) === "" }).toEqual({ vars, accepted: ok });
  });

  test.each([
    [{ metrics_shipping: { enabled: false } }, true],
    [{ metrics_shipping: { interval_seconds: 30, namespace: "Platform/Triggers" } }, true],
    [{ metrics_shipping: { interval_seconds: 5 } }, false],
    [{ metrics_shipping: { log_retention_days: 2 } }, false],
    [{ metrics_shipping: { namespace: "AWS/Triggers" } }, false], // AWS/ is reserved
    [{ backlog_top_n: 0 }, true],
    [{ backlog_top_n: 50 }, true],
    [{ backlog_top_n: 51 }, false], // BACKLOG_TOP_N's bound in src/config.ts
    [{ backlog_top_n: 2.5 }, false],
  ])("metrics shipping and backlog settings %j accepted: %s", (vars, ok) => {
    expect({ vars, accepted: planErrors(vars) === "" }).toEqual({ vars, accepted: ok });
  });

  test.each([
    ["X86_64", true],
    ["ARM64", true],
    ["arm64", false],
  ])("cpu_architecture = %s accepted: %s", (arch, ok) => {
    expect(planErrors({ cpu_architecture: arch }) === "").toBe(ok);
  });
});

describe("the image is built for the task's CPU architecture", () => {
  const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");

  test("every FROM names a platform, and the default platform is the module's default architecture", () => {
    const froms = dockerfile.split("\n").filter((l) => /^\s*FROM\s/i.test(l));
    expect(froms.length).toBeGreaterThan(0);
    for (const f of froms) expect(f).toMatch(/^FROM --platform=\$\{?PLATFORM\}? /);
    const platform = /^ARG PLATFORM=(\S+)$/m.exec(dockerfile)?.[1];
    const variables = readFileSync(join(MODULE_DIR, "variables.tf"), "utf8");
    const arch = /variable "cpu_architecture"[\s\S]*?default\s*=\s*"(\w+)"/.exec(variables)?.[1];
    expect({ arch, platform }).toEqual({ arch: "X86_64", platform: "linux/amd64" });
  });
});
