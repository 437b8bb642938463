/**
 * Real Terraform against the real AWS provider schemas, through the schema-only stand-in provider
 * (terraform-standin: `init`, `validate`, `plan`, `graph`, `show -json`, no provider downloads, no
 * AWS calls). Skips, naming what is missing, when the terraform CLI or the stand-in is absent; the
 * static HCL tests (module.test.ts, conventions.test.ts) run regardless. See ./standin.ts.
 */
import { EXAMPLE_DIR, MODULE_DIR } from "./load-hcl";
import { checkRan, describeTf, label, rel, standin } from "./standin";
import { deadline } from "../helpers/deadlines";

jest.setTimeout(deadline(600_000));

/**
 * Terraform's warnings (deprecations included) as "title (on file line n)", except those inside
 * downloaded third-party modules (.terraform/modules/…), which this repository cannot change.
 */
function warnings(out: string): string[] {
  const lines = out.split("\n");
  const found: string[] = [];
  lines.forEach((line, i) => {
    const title = /^\s*(?:│\s*)?Warning: (.*)$/.exec(line)?.[1];
    if (!title || /CLI configuration file/.test(title)) return;
    const where = lines.slice(i + 1, i + 4).map((l) => /on (\S+) line (\d+)/.exec(l)).find(Boolean);
    if (where && where[1]!.startsWith(".terraform/modules/")) return;
    found.push(`${title}${where ? ` (on ${where[1]} line ${where[2]})` : ""}`);
  });
  return found;
}

interface PlanResource {
  address: string;
  type: string;
  change: { actions: string[]; after: Record<string, unknown> | null };
}

interface Plan {
  resource_changes: PlanResource[];
}

/** Edges of a DOT graph (`terraform graph -type=plan`): node -> the nodes it depends on. */
function parseGraph(dot: string): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const m of dot.matchAll(/^\s*"([^"]+)"\s*->\s*"([^"]+)"/gm)) {
    const from = m[1]!.replace(/^\[root\] /, "").replace(/ \(expand\)$/, "");
    const to = m[2]!.replace(/^\[root\] /, "").replace(/ \(expand\)$/, "");
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
  }
  return edges;
}

/** Everything `node` depends on, directly or through other resources, locals, variables or outputs. */
function dependenciesOf(edges: Map<string, Set<string>>, node: string): Set<string> {
  const seen = new Set<string>();
  const todo = [node];
  while (todo.length > 0) {
    for (const next of edges.get(todo.pop()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

describeTf(label("terraform against the real provider schemas"), () => {

  test.each(["6.47.0", "5.70.0"])("the module validates against hashicorp/aws %s without warnings (no deprecated attributes)", async (aws) => {
    const run = await standin(["--aws", aws, rel(MODULE_DIR), "--", "validate"]);
    checkRan(run, `validate (aws ${aws})`);
    expect(run.stdout).toContain("Success! The configuration is valid");
    expect(warnings(run.stdout + run.stderr)).toEqual([]);
  });

  // The oldest and the newest provider the example's versions.tf allows.
  test.each(["6.47.0", "5.70.0"])("the example validates against hashicorp/aws %s without warnings from this repository's files", async (aws) => {
    const run = await standin(["--aws", aws, rel(EXAMPLE_DIR), "--", "validate"]);
    checkRan(run, `validate example (aws ${aws})`);
    expect(run.stdout).toContain("Success! The configuration is valid");
    expect(warnings(run.stdout + run.stderr)).toEqual([]);
  });

  // The module is planned through the example (a module alone has no provider configuration).
  test("the example (and the module in it) plans the same resources on the oldest and the newest allowed hashicorp/aws", async () => {
    const planned: Record<string, string> = {};
    for (const aws of ["5.70.0", "6.47.0"]) {
      const run = await standin(["--aws", aws, rel(EXAMPLE_DIR), "--", "plan", "-var-file=terraform.tfvars.example"]);
      checkRan(run, `plan example (aws ${aws})`);
      expect(warnings(run.stdout + run.stderr)).toEqual([]);
      planned[aws] = /Plan: (\d+) to add, 0 to change, 0 to destroy/.exec(run.stdout)?.[1] ?? `no plan summary in:\n${run.stdout}`;
    }
    expect(Number(planned["5.70.0"])).toBeGreaterThan(100);
    expect(planned["5.70.0"]).toBe(planned["6.47.0"]);
  });

  describe.each([
    ["aurora-serverless", "aws_rds_cluster_instance"],
    ["rds", "aws_db_instance"],
  ])("the example's plan with database_engine = %s", (engine, databaseType) => {
    let plan: Plan;
    const byAddress = (address: string) => {
      const r = plan.resource_changes.find((c) => c.address === address);
      if (!r) throw new Error(`${address} is not in the plan`);
      return r;
    };

    beforeAll(async () => {
      const run = await standin([rel(EXAMPLE_DIR), "--", "plan-json", "-var-file=terraform.tfvars.example", `-var=database_engine=${engine}`]);
      checkRan(run, `plan (${engine})`);
      plan = JSON.parse(run.stdout) as Plan;
    });

    test("creates the database instances, the services and their prerequisites", () => {
      const types = new Set(plan.resource_changes.filter((c) => c.change.actions.includes("create")).map((c) => c.type));
      for (const t of [databaseType, "aws_ecs_service", "aws_ssm_parameter", "aws_elasticache_replication_group", "terraform_data", "aws_route"]) {
        expect({ type: t, planned: types.has(t) }).toEqual({ type: t, planned: true });
      }
    });

    test("the ALB probes /healthz", () => {
      const tg = byAddress("module.triggers.aws_lb_target_group.api");
      const hc = (tg.change.after?.health_check as Array<Record<string, unknown>>)[0]!;
      expect(hc.path).toBe("/healthz");
    });

    test("IAM authentication is enabled on the database", () => {
      const db = plan.resource_changes.find((c) => c.address === "module.triggers.aws_db_instance.this[0]" || c.address === "module.triggers.aws_rds_cluster.this[0]");
      expect(db?.change.after?.iam_database_authentication_enabled).toBe(true);
    });

    test("the Redis auth token rotates without locking out running tasks", () => {
      expect(byAddress("module.triggers.aws_elasticache_replication_group.this").change.after?.auth_token_update_strategy).toBe("ROTATE");
    });

    test("the api, worker and scheduler services are all planned, and apply waits for their steady state", () => {
      for (const svc of ["api", "worker", "scheduler"]) {
        const service = byAddress(`module.triggers.aws_ecs_service.${svc}`);
        expect(service.change.actions).toEqual(["create"]);
        expect(service.change.after?.wait_for_steady_state).toBe(true);
      }
    });

    test("the migration runs during apply", () => {
      expect(byAddress("module.triggers.terraform_data.migrate[0]").change.actions).toEqual(["create"]);
    });

    test("the alarms for quiet failures and the dashboard are planned", () => {
      const alarms = [
        ...["api", "worker", "scheduler"].map((svc) => `aws_cloudwatch_metric_alarm.tasks_below_desired["${svc}"]`),
        "aws_cloudwatch_metric_alarm.dlq_oldest_message",
        "aws_cloudwatch_metric_alarm.database_connections",
        "aws_cloudwatch_metric_alarm.redis_cpu[0]",
        "aws_cloudwatch_metric_alarm.redis_evictions[0]",
        "aws_cloudwatch_metric_alarm.api_latency_p99",
        "aws_cloudwatch_metric_alarm.expiry_overdue[0]",
        "aws_cloudwatch_metric_alarm.expiry_gauge_overdue[0]",
        "aws_cloudwatch_dashboard.this",
      ];
      for (const address of alarms) expect({ address, actions: byAddress(`module.triggers.${address}`).change.actions }).toEqual({ address, actions: ["create"] });
      const memory = engine === "rds" ? "database_freeable_memory" : "aurora_acu_utilization";
      expect(plan.resource_changes.some((c) => c.address.startsWith(`module.triggers.aws_cloudwatch_metric_alarm.${memory}`))).toBe(true);
    });
  });

  describe("the example's plan with every option on", () => {
    let plan: Plan;

    beforeAll(async () => {
      const run = await standin([
        rel(EXAMPLE_DIR),
        "--",
        "plan-json",
        "-var-file=terraform.tfvars.example",
        "-var=vpc_endpoints=true",
        "-var=worker_fargate_spot=true",
        "-var=one_nat_gateway_per_az=true",
        "-var=waf_web_acl_arn=arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/triggers/1",
        "-var=alb_access_logs_bucket=triggers-alb-logs",
      ]);
      checkRan(run, "plan (options)");
      plan = JSON.parse(run.stdout) as Plan;
    });

    const created = (prefix: string) => plan.resource_changes.filter((c) => c.address.startsWith(prefix) && c.change.actions.includes("create")).map((c) => c.address);

    test("VPC endpoints, a NAT gateway per AZ, flow logs, the WAF association", () => {
      expect(created("module.triggers.aws_vpc_endpoint.interface").length).toBe(6);
      expect(created("module.triggers.aws_vpc_endpoint.s3")).toHaveLength(1);
      expect(created("aws_nat_gateway.this")).toHaveLength(3);
      expect(created("aws_flow_log.this")).toHaveLength(1);
      expect(created("module.triggers.aws_wafv2_web_acl_association.api")).toHaveLength(1);
    });

    test("ALB access logs and deletion protection; Spot workers beyond the first", () => {
      const lb = plan.resource_changes.find((c) => c.address === "module.triggers.aws_lb.this")!.change.after!;
      expect(lb.enable_deletion_protection).toBe(true);
      expect(lb.access_logs).toEqual([expect.objectContaining({ bucket: "triggers-alb-logs", enabled: true })]);
      const worker = plan.resource_changes.find((c) => c.address === "module.triggers.aws_ecs_service.worker")!.change.after!;
      expect(worker.launch_type ?? null).toBeNull();
      expect(worker.capacity_provider_strategy).toEqual(
        expect.arrayContaining([expect.objectContaining({ capacity_provider: "FARGATE_SPOT", weight: 1 }), expect.objectContaining({ capacity_provider: "FARGATE", base: 1 })]),
      );
    });
  });

  describe("the plan graph", () => {
    let edges: Map<string, Set<string>>;

    beforeAll(async () => {
      const run = await standin([rel(EXAMPLE_DIR), "--", "graph", "-type=plan"]);
      checkRan(run, "graph");
      edges = parseGraph(run.stdout);
      expect(edges.size).toBeGreaterThan(50);
    });

    const needs: Record<string, string[]> = {
      api: ["aws_iam_role_policy.api_task"],
      worker: ["aws_iam_role_policy.worker_task"],
      scheduler: [],
    };

    test("the migration run waits for the database instances, the migrate task's permissions and the NAT routes", () => {
      const deps = dependenciesOf(edges, "module.triggers.terraform_data.migrate");
      const required = [
        "module.triggers.aws_iam_role_policy.migrate_task",
        "module.triggers.aws_iam_role_policy.execution",
        "module.triggers.aws_db_instance.this",
        "module.triggers.aws_rds_cluster_instance.this",
        "aws_route.private_nat_gateway",
      ];
      expect(required.filter((r) => !deps.has(r))).toEqual([]);
    });

    test.each(Object.keys(needs))(
      "the %s service depends on its secrets, its IAM policies, the database instances, Redis, the NAT routes and the migration run",
      (svc) => {
        const deps = dependenciesOf(edges, `module.triggers.aws_ecs_service.${svc}`);
        const required = [
          "module.triggers.aws_ssm_parameter.redis_url",
          "module.triggers.aws_ssm_parameter.runtime",
          "module.triggers.aws_elasticache_replication_group.this",
          "module.triggers.aws_iam_role_policy.execution",
          "module.triggers.aws_iam_role_policy.database_connect",
          ...needs[svc]!.map((r) => `module.triggers.${r}`),
          "module.triggers.aws_db_instance.this",
          "module.triggers.aws_rds_cluster_instance.this",
          "aws_route.private_nat_gateway",
          "aws_nat_gateway.this",
          "module.triggers.terraform_data.migrate",
        ];
        expect({ svc, missing: required.filter((r) => !deps.has(r)) }).toEqual({ svc, missing: [] });
      },
    );
  });
});
