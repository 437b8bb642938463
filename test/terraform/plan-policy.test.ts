/**
 * The example's plan, read as a reviewer or a policy tool reads `terraform show -json`: every
 * task definition's container definitions are known at plan time, run the image's CLI with a role
 * it has, set only environment names src/config.ts reads, pass credentials through `secrets`, and
 * the IAM policies grant only allowed actions. The same checks are shown to catch a plan broken
 * on purpose.
 */
import { deadline } from "../helpers/deadlines";
import { dockerEntrypoint } from "../../bench/image";
import { EXAMPLE_DIR, REPO_ROOT } from "./load-hcl";
import { checkPlan, cliCommands, configNames, policyDocuments, registeredMetrics, taskDefinitions, type Plan, type PolicyInputs } from "./plan-policy";
import { checkRan, describeTf, label, rel, standin } from "./standin";

jest.setTimeout(deadline(600_000));

/** An image in a central registry: another account, another region. */
const CENTRAL_IMAGE = "210987654321.dkr.ecr.us-east-1.amazonaws.com/platform/triggers@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/** Every IAM action the module grants, and nothing else. */
const ALLOWED_ACTIONS = [
  "sts:AssumeRole",
  "ecr:GetAuthorizationToken",
  "ecr:BatchCheckLayerAvailability",
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
  "logs:CreateLogStream",
  "logs:PutLogEvents",
  "ssm:GetParameters",
  "secretsmanager:GetSecretValue",
  "kms:Decrypt",
  "rds-db:connect",
  "sqs:SendMessage",
  "sqs:GetQueueAttributes",
  "sqs:ReceiveMessage",
  "sqs:DeleteMessage",
  "sqs:ChangeMessageVisibility",
  "ssmmessages:CreateControlChannel",
  "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel",
  "ssmmessages:OpenDataChannel",
  "rds-data:ExecuteStatement",
  "rds-data:BeginTransaction",
  "rds-data:CommitTransaction",
  "rds-data:RollbackTransaction",
];

const inputs: PolicyInputs = {
  entrypoint: dockerEntrypoint(REPO_ROOT),
  cliCommands: cliCommands(REPO_ROOT),
  configNames: configNames(),
  allowedActions: ALLOWED_ACTIONS,
  iamAddressPrefix: "module.triggers.",
};

test("the policy's inputs come from the code: the CLI's roles and config.ts's names", () => {
  expect(inputs.cliCommands).toEqual(expect.arrayContaining(["api", "worker", "scheduler", "migrate", "healthcheck"]));
  expect(inputs.configNames).toEqual(expect.arrayContaining(["DATABASE_URL", "SQS_QUEUE_URL", "REDIS_URL", "AWS_REGION"]));
});

describeTf(label("the example's plan passes the deploy policy"), () => {
  const plans: Record<string, Plan> = {};
  const clone = (engine: string): Plan => JSON.parse(JSON.stringify(plans[engine])) as Plan;

  beforeAll(async () => {
    for (const engine of ["aurora-serverless", "rds"]) {
      const run = await standin([rel(EXAMPLE_DIR), "--", "plan-json", "-var-file=terraform.tfvars.example", `-var=database_engine=${engine}`]);
      checkRan(run, `plan (${engine})`);
      plans[engine] = JSON.parse(run.stdout) as Plan;
    }
    const run = await standin([rel(EXAMPLE_DIR), "--", "plan-json", "-var-file=terraform.tfvars.example", `-var=image=${CENTRAL_IMAGE}`]);
    checkRan(run, "plan (image in another account)");
    plans.central = JSON.parse(run.stdout) as Plan;
  });

  /** Resources of one statement of the execution role's policy. */
  const executionStatement = (plan: Plan, sid: string) =>
    (policyDocuments(plan).get("module.triggers.data.aws_iam_policy_document.execution") ?? []).find((s) => s.sid === sid);

  test("the execution role pulls from the image's own repository, in whichever account and region it is", () => {
    expect(executionStatement(plans.rds!, "EcrPull")?.resources).toEqual(["arn:aws:ecr:eu-west-1:123456789012:repository/triggers"]);
    expect(executionStatement(plans.central!, "EcrPull")?.resources).toEqual(["arn:aws:ecr:us-east-1:210987654321:repository/platform/triggers"]);
    expect(checkPlan(plans.central!, inputs)).toEqual([]);
  });

  test.each(["aurora-serverless", "rds"])("with database_engine = %s: no violation", (engine) => {
    expect(checkPlan(plans[engine]!, inputs)).toEqual([]);
  });

  test("every container definition is known at plan time, with its command, environment and secrets", () => {
    const defs = taskDefinitions(plans.rds!);
    expect([...defs.keys()].sort()).toEqual(["api", "migrate", "scheduler", "worker"]);
    const worker = defs.get("worker")!.containers![0]!;
    expect(worker.command).toEqual(["worker"]);
    expect(worker.environment!.map((e) => e.name)).toEqual(expect.arrayContaining(["SQS_QUEUE_URL", "SQS_DLQ_URL", "AWS_REGION", "DATABASE_IAM_AUTH"]));
    expect(worker.environment!.find((e) => e.name === "SQS_QUEUE_URL")?.value).toBe("https://sqs.eu-west-1.amazonaws.com/123456789012/triggers-events");
    expect(worker.secrets!.map((s) => s.name).sort()).toEqual(["DATABASE_URL", "REDIS_URL"]);
    const migrate = defs.get("migrate")!.containers![0]!;
    expect(migrate.secrets!.map((s) => s.name).sort()).toEqual(["DATABASE_PASSWORD_SECRET_ARN", "DATABASE_URL"]);
    expect(policyDocuments(plans.rds!).size).toBeGreaterThan(4);
  });

  test("api, worker and scheduler run the metrics collector beside them: it scrapes the task's own metrics port and keeps only series the service exports", () => {
    const defs = taskDefinitions(plans.rds!);
    for (const role of ["api", "worker", "scheduler"]) {
      const containers = defs.get(role)!.containers!;
      expect(containers.map((c) => c.name)).toEqual([role, "metrics-collector"]);
      const collector = containers[1]! as { essential?: boolean; environment?: Array<{ name: string; value: string }> };
      expect(collector.essential).toBe(false);
      const config = collector.environment!.find((e) => e.name === "AOT_CONFIG_CONTENT")!.value;
      expect(config).toContain('"127.0.0.1:9464"');
      expect(config).toContain('"awsemf"');
      expect(config).not.toContain("$");
      // Only error statuses of the request counter go on (the 2xx series would outnumber them).
      expect(config).toContain('"regex": "triggers_http_requests_total;[123].."');
      // The kept series: each one a metric the code registers (a typo here would ship nothing).
      const kept = /"regex": "([^"]+)"/.exec(config)![1]!.split("|");
      expect(kept).toEqual(expect.arrayContaining(["triggers_http_requests_total", "triggers_inbox_leased_total", "triggers_subscription_backlog"]));
      const registered = new Set(registeredMetrics(REPO_ROOT));
      expect(kept.filter((m) => !registered.has(m))).toEqual([]);
      // The exporter's metric_name_selectors are unanchored regexes: no kept name may be part of another.
      expect(kept.filter((a) => kept.some((b) => a !== b && b.includes(a)))).toEqual([]);
    }
    expect(defs.get("migrate")!.containers!.map((c) => c.name)).toEqual(["migrate"]);
    // The collector's task roles write the metrics log group, nothing else new.
    const shipping = policyDocuments(plans.rds!).get("module.triggers.data.aws_iam_policy_document.metrics_shipping[0]")!;
    expect(shipping.flatMap((st) => st.actions as string[]).sort()).toEqual(["logs:CreateLogStream", "logs:PutLogEvents"]);
  });

  describe("a plan broken on purpose is reported", () => {
    type Container = { command?: string[]; environment?: Array<{ name: string; value: string }>; secrets?: Array<{ name: string; valueFrom: string }> };

    /** Rewrites the container definitions of one role's task definition in a copy of the plan. */
    function mutateContainer(role: string, edit: (c: Container) => void): Plan {
      const plan = clone("rds");
      const td = plan.resource_changes.find((r) => r.type === "aws_ecs_task_definition" && r.address.endsWith(`["${role}"]`))!;
      const containers = JSON.parse(String(td.change.after!.container_definitions)) as Container[];
      edit(containers[0]!);
      td.change.after!.container_definitions = JSON.stringify(containers);
      return plan;
    }

    test("a command the CLI does not have", () => {
      const problems = checkPlan(mutateContainer("worker", (c) => (c.command = ["wroker"])), inputs);
      expect(problems.join("\n")).toMatch(/worker.*command \["wroker"\] is not \["worker"\]/);
      expect(problems.join("\n")).toMatch(/"wroker" is not a sub-command of src\/cli\/main\.ts/);
    });

    test("a command that repeats the ENTRYPOINT (node main.js api)", () => {
      const problems = checkPlan(mutateContainer("api", (c) => (c.command = ["node", "dist/src/cli/main.js", "api"])), inputs);
      expect(problems.join("\n")).toMatch(/api.*command .* is not \["api"\]/);
    });

    test("an environment name config.ts does not read", () => {
      const problems = checkPlan(mutateContainer("api", (c) => (c.environment!.find((e) => e.name === "SQS_QUEUE_URL")!.name = "SQS_QUEUE_URI")), inputs);
      expect(problems).toEqual([expect.stringMatching(/api.*environment SQS_QUEUE_URI is not read by src\/config\.ts/)]);
    });

    test("a credential moved from secrets to the environment", () => {
      const problems = checkPlan(
        mutateContainer("scheduler", (c) => {
          c.secrets = c.secrets!.filter((s) => s.name !== "REDIS_URL");
          c.environment!.push({ name: "REDIS_URL", value: "rediss://:token@redis:6379" });
        }),
        inputs,
      );
      expect(problems.join("\n")).toMatch(/scheduler.*REDIS_URL is a credential in plain environment/);
      expect(problems.join("\n")).toMatch(/scheduler.*REDIS_URL holds a URL with a password/);
    });

    test("a sidecar that is essential, takes a secret or scrapes another host; a container nobody knows", () => {
      const plan = clone("rds");
      const td = plan.resource_changes.find((r) => r.type === "aws_ecs_task_definition" && r.address.endsWith('["api"]'))!;
      const containers = JSON.parse(String(td.change.after!.container_definitions)) as Array<Record<string, unknown>>;
      const collector = containers[1]! as { essential?: boolean; secrets?: unknown[]; environment: Array<{ name: string; value: string }> };
      collector.essential = true;
      collector.secrets = [{ name: "REDIS_URL", valueFrom: "arn:aws:ssm:eu-west-1:123456789012:parameter/triggers/redis-url" }];
      collector.environment[0]!.value = collector.environment[0]!.value.replace("127.0.0.1:9464", "10.0.0.9:9464");
      containers.push({ name: "debug-shell", image: "busybox", essential: false });
      td.change.after!.container_definitions = JSON.stringify(containers);
      const problems = checkPlan(plan, inputs).join("\n");
      expect(problems).toMatch(/metrics-collector: a sidecar must not be essential/);
      expect(problems).toMatch(/metrics-collector: a sidecar takes no secrets/);
      expect(problems).toMatch(/metrics-collector: scrapes 10\.0\.0\.9, not its own task/);
      expect(problems).toMatch(/debug-shell: not the role's container and not a known sidecar/);
    });

    test("container definitions unknown at plan time", () => {
      const plan = clone("rds");
      const td = plan.resource_changes.find((r) => r.type === "aws_ecs_task_definition")!;
      delete td.change.after!.container_definitions;
      td.change.after_unknown = { container_definitions: true };
      expect(checkPlan(plan, inputs).join("\n")).toMatch(/container_definitions unknown until apply/);
    });

    test("an IAM action outside the allowed list", () => {
      const plan = clone("rds");
      const doc = plan.resource_changes.find((r) => r.address === "module.triggers.data.aws_iam_policy_document.worker_task")!;
      const statements = doc.change.after!.statement as Array<{ actions: string[] }>;
      statements[0]!.actions = [...statements[0]!.actions, "sqs:PurgeQueue"];
      expect(checkPlan(plan, inputs)).toEqual([expect.stringMatching(/worker_task.*action sqs:PurgeQueue is not in the allowed list/)]);
    });
  });
});
