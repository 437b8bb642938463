import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SQS_MAX_MESSAGE_BYTES } from "../../src/queue/sqs-queue";
import {
  allStrings,
  blocks,
  dataSource,
  loadTerraform,
  MODULE_DIR,
  REPO_ROOT,
  resource,
  strings,
  type Block,
  type TfConfig,
} from "./load-hcl";

let tf: TfConfig;

beforeAll(async () => {
  tf = await loadTerraform(MODULE_DIR);
});

const MAIN_QUEUE_ARN = "${aws_sqs_queue.main.arn}";
const DLQ_ARN = "${aws_sqs_queue.dlq.arn}";

function variableDefault(name: string): unknown {
  const v = tf.variables[name];
  if (!v) throw new Error(`variable ${name} not declared`);
  return v.default;
}

describe("module layout", () => {
  test("follows the terraform-aws-modules file conventions", () => {
    for (const f of ["main.tf", "variables.tf", "outputs.tf", "versions.tf"]) expect(tf.files).toContain(f);
  });

  test("requires aws >= 5 and random", () => {
    const providers = tf.terraform.flatMap((t) => blocks(t, "required_providers"))[0];
    expect(providers).toBeDefined();
    const aws = providers!.aws as { source: string; version: string };
    expect(aws.source).toBe("hashicorp/aws");
    expect(aws.version).toMatch(/>=\s*[5-9]/);
    expect((providers!.random as { source: string }).source).toBe("hashicorp/random");
  });
});

describe("SQS", () => {
  test("both queues are encrypted at rest", () => {
    for (const name of ["main", "dlq"]) {
      const q = resource(tf, "aws_sqs_queue", name);
      const sse = q.sqs_managed_sse_enabled === true || typeof q.kms_master_key_id === "string";
      expect({ queue: name, encrypted: sse }).toEqual({ queue: name, encrypted: true });
    }
  });

  test("both queues take the largest message the API sends", () => {
    for (const name of ["main", "dlq"]) {
      expect({ queue: name, max: Number(resource(tf, "aws_sqs_queue", name).max_message_size) }).toEqual({ queue: name, max: SQS_MAX_MESSAGE_BYTES });
    }
  });

  test("the main queue dead-letters into the DLQ after maxReceiveCount (default 5) receives", () => {
    const policy = String(resource(tf, "aws_sqs_queue", "main").redrive_policy);
    expect(policy).toMatch(/deadLetterTargetArn\s*=\s*aws_sqs_queue\.dlq\.arn/);
    expect(policy).toMatch(/maxReceiveCount\s*=\s*var\.sqs_max_receive_count/);
    expect(variableDefault("sqs_max_receive_count")).toBe(5);
    // And only the main queue may use the DLQ.
    const allow = String(resource(tf, "aws_sqs_queue_redrive_allow_policy", "dlq").redrive_allow_policy);
    expect(allow).toContain("aws_sqs_queue.main.arn");
  });

  test("long polling, retention and a visibility timeout shared with the worker", () => {
    const main = resource(tf, "aws_sqs_queue", "main");
    expect(main.receive_wait_time_seconds).toBe(20);
    expect(main.visibility_timeout_seconds).toBe("${var.sqs_visibility_timeout_seconds}");
    expect(variableDefault("sqs_visibility_timeout_seconds")).toBe(60);
    expect(main.message_retention_seconds).toBe("${var.sqs_message_retention_seconds}");
    expect(variableDefault("sqs_message_retention_seconds")).toBe(4 * 24 * 3600);
    expect(resource(tf, "aws_sqs_queue", "dlq").message_retention_seconds).toBe("${var.sqs_dlq_message_retention_seconds}");
    expect(variableDefault("sqs_dlq_message_retention_seconds")).toBe(14 * 24 * 3600);
    // The worker receives with the same visibility timeout the queue has.
    const workerEnv = String((tf.locals.environment as Record<string, string>).worker);
    expect(workerEnv).toMatch(/WORKER_VISIBILITY_SECONDS\s*=\s*tostring\(var\.sqs_visibility_timeout_seconds\)/);
  });
});

describe("database", () => {
  test("database_engine selects rds or aurora-serverless, validated", () => {
    const v = tf.variables.database_engine!;
    const condition = String(blocks(v, "validation")[0]?.condition);
    expect(condition).toContain('"rds"');
    expect(condition).toContain('"aurora-serverless"');
    expect(String(tf.locals.is_rds)).toContain('var.database_engine == "rds"');
    expect(String(tf.locals.is_aurora)).toContain('var.database_engine == "aurora-serverless"');
    expect(resource(tf, "aws_db_instance", "this").count).toBe("${local.is_rds ? 1 : 0}");
    expect(resource(tf, "aws_rds_cluster", "this").count).toBe("${local.is_aurora ? 1 : 0}");
  });

  test("RDS PostgreSQL 16: encrypted, private, backed up, deletion-protected, managed master password", () => {
    const db = resource(tf, "aws_db_instance", "this");
    expect(db.engine).toBe("postgres");
    expect(db.engine_version).toBe("${var.rds_engine_version}");
    expect(variableDefault("rds_engine_version")).toMatch(/^16/);
    expect(db.storage_encrypted).toBe(true);
    expect(db.publicly_accessible).toBe(false);
    expect(db.manage_master_user_password).toBe(true);
    expect(db.deletion_protection).toBe("${var.deletion_protection}");
    expect(db.backup_retention_period).toBe("${var.database_backup_retention_days}");
    expect(db.skip_final_snapshot).toBe(false);
    expect(db.db_subnet_group_name).toBe("${aws_db_subnet_group.this.name}");
  });

  test("Aurora Serverless v2: encrypted, private, Data API switch, managed master password", () => {
    const cluster = resource(tf, "aws_rds_cluster", "this");
    expect(cluster.engine).toBe("aurora-postgresql");
    expect(blocks(cluster, "serverlessv2_scaling_configuration")).toHaveLength(1);
    expect(cluster.storage_encrypted).toBe(true);
    expect(cluster.manage_master_user_password).toBe(true);
    expect(cluster.enable_http_endpoint).toBe("${var.enable_data_api}");
    expect(cluster.deletion_protection).toBe("${var.deletion_protection}");
    expect(cluster.backup_retention_period).toBe("${var.database_backup_retention_days}");
    const instance = resource(tf, "aws_rds_cluster_instance", "this");
    expect(instance.instance_class).toBe("db.serverless");
    expect(instance.publicly_accessible).toBe(false);
    expect(String(variableDefault("aurora_engine_version"))).toMatch(/^16\./);
  });

  test("deletion protection is on by default and backups cannot be switched off", () => {
    expect(variableDefault("deletion_protection")).toBe(true);
    expect(String(blocks(tf.variables.database_backup_retention_days, "validation")[0]?.condition)).toMatch(/>= 1/);
  });

  test("the database lives in the given private subnets of the given VPC", () => {
    expect(strings(resource(tf, "aws_db_subnet_group", "this"), "subnet_ids")).toEqual(["${local.database_subnet_ids}"]);
    expect(String(tf.locals.database_subnet_ids)).toContain("var.private_subnet_ids");
    expect(resource(tf, "aws_security_group", "database").vpc_id).toBe("${var.vpc_id}");
  });
});

describe("Redis", () => {
  test("encrypted at rest and in transit, with an auth token kept in Secrets Manager", () => {
    const redis = resource(tf, "aws_elasticache_replication_group", "this");
    expect(redis.at_rest_encryption_enabled).toBe(true);
    expect(redis.transit_encryption_enabled).toBe(true);
    expect(redis.auth_token).toBe("${random_password.redis_auth_token.result}");
    expect(redis.subnet_group_name).toBe("${aws_elasticache_subnet_group.this.name}");
    const secret = String(resource(tf, "aws_secretsmanager_secret_version", "redis_url").secret_string);
    expect(secret).toMatch(/^rediss:\/\/:\$\{random_password\.redis_auth_token\.result\}@/);
    expect(secret).toMatch(/:6379$/);
  });

  test("BullMQ's required eviction policy", () => {
    const params = blocks(resource(tf, "aws_elasticache_parameter_group", "this"), "parameter");
    expect(params).toContainEqual({ name: "maxmemory-policy", value: "noeviction" });
  });
});

describe("ECS", () => {
  test("one image, four processes with the expected commands", () => {
    expect(tf.locals.commands).toEqual({
      api: ["node", "${var.cli_script}", "api"],
      worker: ["node", "${var.cli_script}", "worker"],
      scheduler: ["node", "${var.cli_script}", "scheduler"],
      migrate: ["node", "${var.cli_script}", "migrate"],
    });
    // The default is the file the project's build produces (package.json's "triggers" script runs it).
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> };
    const cli = /node (\S+main\.js)/.exec(pkg.scripts?.triggers ?? "")?.[1];
    expect(variableDefault("cli_script")).toBe(cli ?? "dist/src/cli/main.js");
    const td = resource(tf, "aws_ecs_task_definition", "this");
    expect(td.for_each).toBe("${local.commands}");
    expect(td.requires_compatibilities).toEqual(["FARGATE"]);
    expect(String(tf.locals.container_definitions)).toMatch(/image\s*=\s*var\.image\b/);
    // Separate execution and per-process task roles.
    expect(td.execution_role_arn).toBe("${aws_iam_role.execution.arn}");
    expect(td.task_role_arn).toBe("${aws_iam_role.task[each.key].arn}");
  });

  test("three long-running services; only api sits behind the load balancer on port 3000", () => {
    const services = tf.resources.aws_ecs_service ?? {};
    expect(Object.keys(services).sort()).toEqual(["api", "scheduler", "worker"]);
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.task_definition).toBe(`\${aws_ecs_task_definition.this["${name}"].arn}`);
      const net = blocks(svc, "network_configuration")[0]!;
      expect(net.assign_public_ip).toBe(false);
      expect(net.subnets).toBe("${var.private_subnet_ids}");
    }
    const lb = blocks(services.api, "load_balancer")[0]!;
    expect(lb).toMatchObject({ container_name: "api", container_port: "${local.api_port}" });
    expect(tf.locals.api_port).toBe(3000);
    expect(blocks(services.worker, "load_balancer")).toHaveLength(0);
    expect(blocks(services.scheduler, "load_balancer")).toHaveLength(0);
  });

  test("each process gets the environment it reads; secrets come from Secrets Manager", () => {
    const env = tf.locals.environment as Record<string, string>;
    const common = tf.locals.common_environment as Record<string, string>;
    expect(Object.keys(common).sort()).toEqual(["AWS_REGION", "DATABASE_URL", "LOG_LEVEL", "NODE_ENV"]);
    expect(env.api).toMatch(/PORT\s*=\s*tostring\(local\.api_port\)/);
    expect(env.api).toMatch(/SQS_QUEUE_URL\s*=\s*aws_sqs_queue\.main\.url/);
    expect(env.worker).toMatch(/SQS_QUEUE_URL\s*=\s*aws_sqs_queue\.main\.url/);
    expect(env.worker).toMatch(/SQS_DLQ_URL\s*=\s*aws_sqs_queue\.dlq\.url/);
    expect(env.worker).toMatch(/METRICS_PORT\s*=\s*tostring\(var\.metrics_port\)/);
    expect(variableDefault("metrics_port")).toBe(9464);
    // scheduler and migrate only get the queue URL (so no embedded emulator starts); no DLQ, no
    // worker settings, and (see IAM) no SQS permission.
    for (const svc of ["scheduler", "migrate"]) {
      expect(env[svc]).toMatch(/SQS_QUEUE_URL\s*=\s*aws_sqs_queue\.main\.url/);
      expect(env[svc]).not.toMatch(/SQS_DLQ_URL|WORKER_/);
    }
    expect(env.api).not.toMatch(/SQS_DLQ_URL|WORKER_/);
    // Module values are merged last, so var.environment cannot override them.
    for (const e of Object.values(env)) expect(e).toMatch(/^\$\{merge\(var\.environment, local\.common_environment/);

    // No credential in the task definition: the DB password and the Redis URL are ECS secrets.
    expect(tf.locals.database_password_secret).toEqual({ name: "PGPASSWORD", valueFrom: "${local.database_secret_arn}:password::" });
    expect(tf.locals.redis_url_secret).toEqual({ name: "REDIS_URL", valueFrom: "${aws_secretsmanager_secret.redis_url.arn}" });
    expect(String(tf.locals.database_url)).not.toMatch(/password|random_password/i);
    expect(String(tf.locals.database_url)).toMatch(/^postgresql:\/\//);
    expect(String(tf.locals.container_definitions)).toContain("secrets     = local.secrets[svc]");
  });

  test("api scales on CPU and requests per target", () => {
    const policies = tf.resources.aws_appautoscaling_policy ?? {};
    const apiPolicies = Object.values(policies).filter((p) => String(p.resource_id).includes("aws_appautoscaling_target.api"));
    const types = apiPolicies.flatMap((p) =>
      blocks(p, "target_tracking_scaling_policy_configuration").flatMap((c) =>
        blocks(c, "predefined_metric_specification").map((m) => m.predefined_metric_type),
      ),
    );
    expect(types.sort()).toEqual(["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]);
  });

  test("worker scales on the queue backlog per running task", () => {
    const policy = resource(tf, "aws_appautoscaling_policy", "worker_backlog");
    expect(policy.resource_id).toBe("${aws_appautoscaling_target.worker.resource_id}");
    const cfg = blocks(policy, "target_tracking_scaling_policy_configuration")[0]!;
    expect(cfg.target_value).toBe("${var.worker.backlog_per_task}");
    const metrics = blocks(blocks(cfg, "customized_metric_specification")[0], "metrics");
    const byId = Object.fromEntries(metrics.map((m) => [String(m.id), m]));
    const metricOf = (m: Block | undefined) => blocks(blocks(m, "metric_stat")[0], "metric")[0]!;

    const visible = metricOf(byId.visible);
    expect(visible).toMatchObject({ namespace: "AWS/SQS", metric_name: "ApproximateNumberOfMessagesVisible" });
    expect(blocks(visible, "dimensions")).toEqual([{ name: "QueueName", value: "${aws_sqs_queue.main.name}" }]);

    const tasks = metricOf(byId.tasks);
    expect(tasks).toMatchObject({ namespace: "ECS/ContainerInsights", metric_name: "RunningTaskCount" });
    expect(blocks(tasks, "dimensions")).toContainEqual({ name: "ServiceName", value: "${aws_ecs_service.worker.name}" });
    // RunningTaskCount exists only with Container Insights.
    expect(blocks(resource(tf, "aws_ecs_cluster", "this"), "setting")).toContainEqual({ name: "containerInsights", value: "enabled" });

    const returned = metrics.filter((m) => m.return_data === true);
    expect(returned).toHaveLength(1);
    expect(returned[0]!.expression).toBe("visible / tasks");
  });

  test("a migrate task definition exists for one-off runs and is exposed", () => {
    expect(Object.keys(tf.locals.commands as object)).toContain("migrate");
    expect(tf.outputs.migrate_task_definition_arn?.value).toBe('${aws_ecs_task_definition.this["migrate"].arn}');
    expect(tf.resources.aws_ecs_service?.migrate).toBeUndefined();
  });
});

describe("load balancer", () => {
  test("HTTPS with the given certificate, HTTP redirected, health check on /readyz", () => {
    const https = resource(tf, "aws_lb_listener", "https");
    expect(https).toMatchObject({ port: 443, protocol: "HTTPS", certificate_arn: "${var.certificate_arn}" });
    const http = resource(tf, "aws_lb_listener", "http");
    const action = blocks(http, "default_action")[0]!;
    expect(action.type).toBe("redirect");
    expect(blocks(action, "redirect")[0]).toMatchObject({ protocol: "HTTPS", port: "443", status_code: "HTTP_301" });

    const tg = resource(tf, "aws_lb_target_group", "api");
    expect(tg).toMatchObject({ target_type: "ip", port: "${local.api_port}" });
    expect(blocks(tg, "health_check")[0]!.path).toBe("${var.api.health_check_path}");
    expect(String(tf.variables.api!.type)).toContain('health_check_path    = optional(string, "/readyz")');
  });
});

describe("security groups", () => {
  const ingressTo = (sg: string) =>
    Object.values(tf.resources.aws_vpc_security_group_ingress_rule ?? {}).filter(
      (r) => r.security_group_id === `\${aws_security_group.${sg}.id}`,
    );

  test("no inline rules (all rules are separate resources, so they are reviewable here)", () => {
    for (const sg of Object.values(tf.resources.aws_security_group ?? {})) {
      expect(sg.ingress).toBeUndefined();
      expect(sg.egress).toBeUndefined();
    }
  });

  test("only the ALB reaches the api tasks, on 3000", () => {
    const rules = ingressTo("api");
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      referenced_security_group_id: "${aws_security_group.alb.id}",
      from_port: "${local.api_port}",
      to_port: "${local.api_port}",
    });
  });

  test("only the tasks reach Postgres on 5432 and Redis on 6379", () => {
    expect(tf.locals.database_port).toBe(5432);
    const db = ingressTo("database");
    expect(db).toHaveLength(1);
    expect(db[0]).toMatchObject({
      referenced_security_group_id: "${aws_security_group.tasks.id}",
      from_port: "${local.database_port}",
      to_port: "${local.database_port}",
    });
    const redis = ingressTo("redis");
    expect(redis).toHaveLength(1);
    expect(redis[0]).toMatchObject({ referenced_security_group_id: "${aws_security_group.tasks.id}", from_port: 6379, to_port: 6379 });
  });

  test("no CIDR ingress except to the load balancer", () => {
    for (const r of Object.values(tf.resources.aws_vpc_security_group_ingress_rule ?? {})) {
      if (r.cidr_ipv4 !== undefined || r.cidr_ipv6 !== undefined) {
        expect(r.security_group_id).toBe("${aws_security_group.alb.id}");
      }
    }
  });
});

describe("IAM", () => {
  const TASK_ROLE_REF = /^\$\{aws_iam_role\.task\["(\w+)"\]\.(id|name)\}$/;

  /** Task role name -> the policy documents attached to it (inline policies only). */
  function taskPolicies(): Record<string, Block[]> {
    const out: Record<string, Block[]> = {};
    for (const [name, rp] of Object.entries(tf.resources.aws_iam_role_policy ?? {})) {
      const m = TASK_ROLE_REF.exec(String(rp.role));
      if (!m) continue;
      // Task policies must be aws_iam_policy_document data sources, so this test can read them.
      const doc = /^\$\{data\.aws_iam_policy_document\.(\w+)\.json\}$/.exec(String(rp.policy));
      if (!doc) throw new Error(`aws_iam_role_policy.${name} is not an aws_iam_policy_document`);
      (out[m[1]!] ??= []).push(dataSource(tf, "aws_iam_policy_document", doc[1]!));
    }
    return out;
  }

  const statements = (docs: Block[] = []) => docs.flatMap((d) => blocks(d, "statement"));

  test("task roles exist per process, trusted by ECS tasks only, with no managed policies", () => {
    const role = resource(tf, "aws_iam_role", "task");
    expect(String(role.for_each)).toContain('"api", "worker", "scheduler", "migrate"');
    expect(resource(tf, "aws_iam_role", "execution")).toBeDefined();
    const trust = statements([dataSource(tf, "aws_iam_policy_document", "ecs_tasks_assume")]);
    expect(blocks(trust[0], "principals")[0]).toMatchObject({ type: "Service", identifiers: ["ecs-tasks.amazonaws.com"] });
    for (const a of Object.values(tf.resources.aws_iam_role_policy_attachment ?? {})) {
      expect(String(a.role)).not.toMatch(/aws_iam_role\.task/);
    }
  });

  test("no wildcard action and no wildcard resource in any task policy", () => {
    const all = statements(Object.values(taskPolicies()).flat());
    expect(all.length).toBeGreaterThan(0);
    for (const s of all) {
      expect(s.not_actions).toBeUndefined();
      expect(s.not_resources).toBeUndefined();
      expect(s.effect ?? "Allow").toBe("Allow");
      for (const action of strings(s, "actions")) {
        expect(action).not.toContain("*");
        expect(action).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
      }
      for (const r of strings(s, "resources")) {
        expect(r).not.toContain("*");
        expect(r).toMatch(/^\$\{aws_[a-z0-9_]+\.[a-z0-9_]+\.arn\}$/);
      }
    }
  });

  test("api may only send to (and read the attributes of) the main queue", () => {
    const api = statements(taskPolicies().api);
    expect(new Set(api.flatMap((s) => strings(s, "actions")))).toEqual(new Set(["sqs:SendMessage", "sqs:GetQueueAttributes"]));
    for (const s of api) expect(strings(s, "resources")).toEqual([MAIN_QUEUE_ARN]);
  });

  test("worker may only receive, delete and extend visibility on the main queue", () => {
    const worker = statements(taskPolicies().worker);
    const onMain = worker.filter((s) => strings(s, "resources").includes(MAIN_QUEUE_ARN));
    expect(new Set(onMain.flatMap((s) => strings(s, "actions")))).toEqual(
      new Set(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]),
    );
    // Its only other permission: reading the DLQ depth.
    for (const s of worker.filter((x) => !onMain.includes(x))) {
      expect(strings(s, "resources")).toEqual([DLQ_ARN]);
      expect(strings(s, "actions")).toEqual(["sqs:GetQueueAttributes"]);
    }
    expect(worker.flatMap((s) => strings(s, "actions"))).not.toContain("sqs:SendMessage");
  });

  test("scheduler and migrate have no AWS permissions at all", () => {
    const policies = taskPolicies();
    expect(policies.scheduler).toBeUndefined();
    expect(policies.migrate).toBeUndefined();
    expect(Object.keys(policies).sort()).toEqual(["api", "worker"]);
  });

  test("the execution role reads exactly the two task secrets", () => {
    const exec = statements([dataSource(tf, "aws_iam_policy_document", "execution")]);
    const secretReads = exec.filter((s) => strings(s, "actions").includes("secretsmanager:GetSecretValue"));
    expect(secretReads).toHaveLength(1);
    expect(strings(secretReads[0], "resources").sort()).toEqual(
      ["${aws_secretsmanager_secret.redis_url.arn}", "${local.database_secret_arn}"].sort(),
    );
    // The only "*" resource anywhere is ecr:GetAuthorizationToken, which has no resource-level permissions.
    for (const s of exec) {
      if (strings(s, "resources").includes("*")) expect(strings(s, "actions")).toEqual(["ecr:GetAuthorizationToken"]);
    }
  });
});

describe("alarms", () => {
  interface AlarmView {
    name: string;
    metrics: string[];
    block: Block;
  }

  function alarms(): AlarmView[] {
    return Object.entries(tf.resources.aws_cloudwatch_metric_alarm ?? {}).map(([name, block]) => {
      const fromQueries = blocks(block, "metric_query").flatMap((q) => blocks(q, "metric").map((m) => String(m.metric_name)));
      const direct = block.metric_name === undefined ? [] : [String(block.metric_name)];
      return { name, metrics: [...direct, ...fromQueries], block };
    });
  }

  const withMetric = (metric: string) => alarms().filter((a) => a.metrics.includes(metric));

  test("DLQ not empty", () => {
    const [a] = withMetric("ApproximateNumberOfMessagesVisible");
    expect(a).toBeDefined();
    expect(a!.block).toMatchObject({
      namespace: "AWS/SQS",
      dimensions: { QueueName: "${aws_sqs_queue.dlq.name}" },
      comparison_operator: "GreaterThanThreshold",
      threshold: 0,
    });
  });

  test("age of the oldest message on the main queue", () => {
    const [a] = withMetric("ApproximateAgeOfOldestMessage");
    expect(a).toBeDefined();
    expect(a!.block).toMatchObject({ namespace: "AWS/SQS", dimensions: { QueueName: "${aws_sqs_queue.main.name}" } });
  });

  test("ALB 5xx rate from HTTPCode_Target_5XX_Count over RequestCount", () => {
    const [a] = withMetric("HTTPCode_Target_5XX_Count");
    expect(a).toBeDefined();
    expect(a!.metrics).toContain("RequestCount");
    const expr = blocks(a!.block, "metric_query").find((q) => q.return_data === true);
    expect(String(expr?.expression)).toMatch(/errors\s*\/\s*requests/);
  });

  test("database CPU and free storage", () => {
    const [cpu] = withMetric("CPUUtilization");
    expect(cpu?.block.namespace).toBe("AWS/RDS");
    const storage = alarms().find((a) => a.name === "database_free_storage");
    expect(storage?.block).toMatchObject({ namespace: "AWS/RDS", comparison_operator: "LessThanThreshold" });
    expect(storage?.block.metric_name).toBe("${local.database_free_storage_metric}");
    expect(String(tf.locals.database_free_storage_metric)).toContain('"FreeStorageSpace"');
  });

  test("every alarm notifies the alarm actions (SNS topic and/or alarm_actions)", () => {
    expect(String(tf.locals.alarm_actions)).toMatch(/aws_sns_topic\.alarms\[\*\]\.arn.*var\.alarm_actions/);
    for (const a of alarms()) expect(a.block.alarm_actions).toBe("${local.alarm_actions}");
    // CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key.
    expect(resource(tf, "aws_sns_topic", "alarms").kms_master_key_id).not.toBe("alias/aws/sns");
  });
});

describe("outputs", () => {
  test("exposes what a platform engineer needs after apply", () => {
    for (const name of [
      "api_url",
      "queue_url",
      "dlq_url",
      "database_endpoint",
      "database_secret_arn",
      "redis_secret_arn",
      "cluster_name",
      "migrate_task_definition_arn",
    ]) {
      expect(tf.outputs[name]).toBeDefined();
      expect(String(tf.outputs[name]!.description ?? "")).not.toBe("");
    }
  });

  test("no output leaks a secret value", () => {
    for (const [name, o] of Object.entries(tf.outputs)) {
      for (const s of allStrings(o.value)) {
        expect({ name, leaks: /random_password|secret_string|auth_token/.test(s) }).toEqual({ name, leaks: false });
      }
    }
  });
});
