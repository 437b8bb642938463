/**
 * scripts/run-migrate.sh, which `terraform apply` runs (terraform_data.migrate) before the services:
 * it must fail the apply unless the migrate task's container exited 0. AWS is played by an `aws`
 * executable on PATH that answers run-task and describe-tasks from files the test writes, and logs
 * every call.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODULE_DIR } from "./load-hcl";

const SCRIPT = join(MODULE_DIR, "scripts", "run-migrate.sh");

const FAKE_AWS = `#!/usr/bin/env bash
echo "$*" >> "$FAKE_DIR/calls"
case "$2" in
  run-task) cat "$FAKE_DIR/run-task" ;;
  describe-tasks)
    n=$(grep -c describe-tasks "$FAKE_DIR/calls")
    if [ -f "$FAKE_DIR/describe-$n" ]; then cat "$FAKE_DIR/describe-$n"; else cat "$FAKE_DIR/describe"; fi ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
`;

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "run-migrate-"));
  writeFileSync(join(dir, "aws"), FAKE_AWS);
  chmodSync(join(dir, "aws"), 0o755);
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string; calls: string[] }> {
  return new Promise((done) => {
    const child = spawn("bash", [SCRIPT], {
      env: {
        PATH: `${dir}:${process.env.PATH}`,
        FAKE_DIR: dir,
        CLUSTER: "triggers",
        TASK_DEFINITION: "arn:aws:ecs:eu-west-1:123456789012:task-definition/triggers-migrate:7",
        SUBNETS: "subnet-a,subnet-b",
        SECURITY_GROUPS: "sg-1",
        AWS_REGION: "eu-west-1",
        LOG_GROUP: "/ecs/triggers/migrate",
        POLL_SECONDS: "0.05",
        ...extraEnv,
      },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("close", (code) => {
      let calls: string[] = [];
      try {
        calls = readFileSync(join(dir, "calls"), "utf8").trim().split("\n");
      } catch {
        // no call made
      }
      done({ code, out, calls });
    });
  });
}

const TASK = "arn:aws:ecs:eu-west-1:123456789012:task/triggers/abc";

test("waits for the task to stop and succeeds when the container exited 0", async () => {
  writeFileSync(join(dir, "run-task"), `${TASK}\tNone\n`);
  writeFileSync(join(dir, "describe-1"), "PROVISIONING\tNone\tNone\n");
  writeFileSync(join(dir, "describe-2"), "RUNNING\tNone\tNone\n");
  writeFileSync(join(dir, "describe"), "STOPPED\t0\tEssential container in task exited\n");
  const r = await run();
  expect(r.code).toBe(0);
  expect(r.out).toContain("migrate: done");
  expect(r.calls.filter((c) => c.includes("describe-tasks"))).toHaveLength(3);
  // The task definition, the private subnets and the tasks' security group, on Fargate, no public IP.
  expect(r.calls[0]).toContain("--task-definition arn:aws:ecs:eu-west-1:123456789012:task-definition/triggers-migrate:7");
  expect(r.calls[0]).toContain("awsvpcConfiguration={subnets=[subnet-a,subnet-b],securityGroups=[sg-1],assignPublicIp=DISABLED}");
  expect(r.calls[0]).toContain("--launch-type FARGATE");
});

test("fails, naming the exit code and the log group, when the migration fails", async () => {
  writeFileSync(join(dir, "run-task"), `${TASK}\tNone\n`);
  writeFileSync(join(dir, "describe"), "STOPPED\t1\tEssential container in task exited\n");
  const r = await run();
  expect(r.code).toBe(1);
  expect(r.out).toContain("exit code 1");
  expect(r.out).toContain("/ecs/triggers/migrate");
});

test("fails when the task stopped without a container exit code (image pull, secrets)", async () => {
  writeFileSync(join(dir, "run-task"), `${TASK}\tNone\n`);
  writeFileSync(join(dir, "describe"), "STOPPED\tNone\tCannotPullContainerError: pull access denied\n");
  const r = await run();
  expect(r.code).toBe(1);
  expect(r.out).toContain("CannotPullContainerError");
});

test("fails when ECS does not start the task, with ECS's reason", async () => {
  writeFileSync(join(dir, "run-task"), "None\tRESOURCE:ENI\n");
  const r = await run();
  expect(r.code).toBe(1);
  expect(r.out).toContain("did not start: RESOURCE:ENI");
  expect(r.calls.filter((c) => c.includes("describe-tasks"))).toHaveLength(0);
});

test("gives up after TIMEOUT_SECONDS without stopping the task", async () => {
  writeFileSync(join(dir, "run-task"), `${TASK}\tNone\n`);
  writeFileSync(join(dir, "describe"), "RUNNING\tNone\tNone\n");
  const started = Date.now();
  const r = await run({ TIMEOUT_SECONDS: "1" });
  expect(r.code).toBe(1);
  expect(r.out).toContain("still RUNNING after 1s");
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(r.calls.some((c) => c.includes("stop-task"))).toBe(false);
});
