import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dockerEntrypoint } from "../../bench/image";
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
    expect(db.iam_database_authentication_enabled).toBe(true);
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
    expect(cluster.iam_database_authentication_enabled).toBe(true);
    expect(cluster.enable_http_endpoint).toBe("${var.enable_data_api}");
    expect(cluster.deletion_protection).toBe("${var.deletion_protection}");
    expect(cluster.backup_retention_period).toBe("${var.database_backup_retention_days}");
    const instance = resource(tf, "aws_rds_cluster_instance", "this");
    expect(instance.instance_class).toBe("db.serverless");
    expect(instance.publicly_accessible).toBe(false);
    expect(String(variableDefault("aurora_engine_version"))).toMatch(/^16\./);
  });

  test("final snapshots get a name of their own per database created (a second destroy does not collide)", () => {
    for (const [type, name] of [["aws_db_instance", "this"], ["aws_rds_cluster", "this"]] as const) {
      expect(resource(tf, type, name).final_snapshot_identifier).toBe("${var.name}-final-${local.final_snapshot_suffix}");
    }
    const keepers = resource(tf, "random_password", "final_snapshot").keepers as Record<string, string>;
    expect(Object.values(keepers)).toEqual(expect.arrayContaining(["${var.name}", "${var.database_engine}"]));
    expect(String(tf.locals.final_snapshot_suffix)).toBe("${nonsensitive(random_password.final_snapshot.result)}");
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
  test("encrypted at rest and in transit, with an auth token kept in an SSM SecureString parameter", () => {
    const redis = resource(tf, "aws_elasticache_replication_group", "this");
    expect(redis.at_rest_encryption_enabled).toBe(true);
    expect(redis.transit_encryption_enabled).toBe(true);
    expect(redis.auth_token).toBe("${random_password.redis_auth_token.result}");
    // A changed token does not lock out tasks that still hold the old REDIS_URL.
    expect(redis.auth_token_update_strategy).toBe("${var.redis_auth_token_update_strategy}");
    expect(variableDefault("redis_auth_token_update_strategy")).toBe("ROTATE");
    expect(redis.subnet_group_name).toBe("${aws_elasticache_subnet_group.this.name}");
    const parameter = resource(tf, "aws_ssm_parameter", "redis_url");
    expect(parameter.type).toBe("SecureString");
    expect(parameter.name).toBe("/${var.name}/redis-url");
    const secret = String(parameter.value);
    expect(secret).toMatch(/^rediss:\/\/:\$\{random_password\.redis_auth_token\.result\}@/);
    expect(secret).toMatch(/:6379$/);
  });

  test("BullMQ's required eviction policy", () => {
    const params = blocks(resource(tf, "aws_elasticache_parameter_group", "this"), "parameter");
    expect(params).toContainEqual({ name: "maxmemory-policy", value: "noeviction" });
  });
});

describe("ECS", () => {
  test("one image, four processes; a task command is only the sub-command after the image's ENTRYPOINT", () => {
    // The Dockerfile's ENTRYPOINT is ["node", <node options>, "dist/src/cli/main.js"]; ECS appends the command to it,
    // so a command that repeats `node <script>` runs `main.js node main.js api` (unknown command).
    // test/integration/image-argv.test.ts runs ENTRYPOINT + these commands with the built CLI.
    expect(tf.locals.commands).toEqual({
      api: ["api"],
      worker: ["worker"],
      scheduler: ["scheduler"],
      migrate: ["migrate"],
    });
    const entrypoint = dockerEntrypoint(REPO_ROOT);
    // The health checks run the same script as the ENTRYPOINT.
    expect(entrypoint[0]).toBe("node");
    expect(entrypoint.slice(1, -1).every((a) => a.startsWith("--"))).toBe(true);
    expect(entrypoint.at(-1)).toBe(variableDefault("cli_script"));
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

  test("each process gets the environment it reads; no database password anywhere in the task", () => {
    const env = tf.locals.environment as Record<string, string>;
    const common = tf.locals.common_environment as Record<string, string>;
    const service = tf.locals.service_environment as Record<string, string>;
    // Every role gets the real queue URL: api, worker and scheduler refuse to start without one.
    expect(common).toEqual({
      AWS_REGION: "${local.region}",
      LOG_LEVEL: "${var.log_level}",
      SQS_QUEUE_URL: "${local.queue_url}",
    });
    // The queue URLs as SQS forms them, so the task definitions are known at plan time.
    expect(tf.locals.queue_url).toBe("https://sqs.${local.region}.${local.dns_suffix}/${local.account_id}/${local.queue_name}");
    expect(resource(tf, "aws_sqs_queue", "main").name).toBe("${local.queue_name}");
    expect(resource(tf, "aws_sqs_queue", "dlq").name).toBe("${local.dlq_name}");
    // The long-running roles: triggers_app through IAM auth, all interfaces, health on METRICS_PORT.
    expect(service).toEqual({
      DATABASE_IAM_AUTH: "true",
      HOST: "0.0.0.0",
      METRICS_PORT: "${tostring(var.metrics_port)}",
    });
    expect(variableDefault("metrics_port")).toBe(9464);
    for (const svc of ["api", "worker", "scheduler"]) {
      expect(env[svc]).toMatch(/^\$\{merge\(var\.environment, local\.common_environment, local\.service_environment,/);
    }
    expect(env.api).toMatch(/PORT\s*=\s*tostring\(local\.api_port\)/);
    // Behind the ALB the client address is the X-Forwarded-For hop the ALB appends.
    expect(env.api).toMatch(/HTTP_TRUST_PROXY\s*=\s*"true"/);
    expect(env.worker).not.toMatch(/HTTP_TRUST_PROXY/);
    expect(env.worker).toMatch(/SQS_DLQ_URL\s*=\s*local\.dlq_url/);
    expect(env.api).not.toMatch(/SQS_DLQ_URL|WORKER_/);
    expect(env.scheduler).not.toMatch(/SQS_DLQ_URL|WORKER_/);
    expect(env.migrate).not.toContain("local.service_environment");
    // Module values are merged last, so var.environment cannot override them.
    for (const e of Object.values(env)) expect(e).toMatch(/^\$\{merge\(var\.environment, local\.common_environment/);

    // What AWS knows only after apply reaches the tasks through SSM parameters with known ARNs:
    // triggers_app's URL for the services; the master user's URL and the master secret's ARN for migrate.
    expect(tf.locals.runtime_parameters).toEqual({
      "app-database-url": "${local.app_database_url}",
      "database-url": "${local.database_url}",
      "database-password-secret-arn": "${local.database_secret_arn}",
    });
    expect(String(tf.locals.parameter_arn_prefix)).toBe("arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${var.name}");
    expect(resource(tf, "aws_ssm_parameter", "runtime")).toMatchObject({ for_each: "${local.runtime_parameters}", type: "String", name: "/${var.name}/${each.key}" });
    const secrets = JSON.stringify(tf.locals.secrets);
    for (const svc of ["api", "worker", "scheduler"]) {
      expect((tf.locals.secrets as Record<string, unknown[]>)[svc]).toEqual([
        { name: "DATABASE_URL", valueFrom: '${local.parameter_arns["app-database-url"]}' },
        { name: "REDIS_URL", valueFrom: '${local.parameter_arns["redis-url"]}' },
      ]);
    }
    expect((tf.locals.secrets as Record<string, unknown[]>).migrate).toEqual([
      { name: "DATABASE_URL", valueFrom: '${local.parameter_arns["database-url"]}' },
      { name: "DATABASE_PASSWORD_SECRET_ARN", valueFrom: '${local.parameter_arns["database-password-secret-arn"]}' },
    ]);
    expect(secrets).not.toMatch(/password_secret"|redis_auth_token|random_password/);

    // The URLs: no password; the app role for the services, the master user for migrate.
    expect(tf.locals.app_database_user).toBe("triggers_app");
    expect(String(tf.locals.app_database_url)).toBe("postgresql://${local.app_database_user}@${local.database_location}");
    expect(String(tf.locals.database_url)).toBe("postgresql://${var.database_username}@${local.database_location}");
    expect(variableDefault("database_ssl_query")).toBe("sslmode=verify-full");
    for (const url of [tf.locals.database_url, tf.locals.app_database_url, tf.locals.database_location]) {
      expect(String(url)).not.toMatch(/password|random_password|secret/i);
    }
    // No password is injected; a PGPASSWORD read once at start would go stale at the first rotation.
    expect(tf.locals.database_password_secret).toBeUndefined();
    expect(String(tf.locals.container_definitions)).toMatch(/secrets\s+= local\.secrets\[svc\]/);
    expect(allStrings(tf.locals).join("\n")).not.toContain("PGPASSWORD");
  });

  test("every long-running role has a container health check running the CLI's healthcheck", () => {
    expect(tf.locals.services).toBe('${toset(["api", "worker", "scheduler"])}');
    const checks = String(tf.locals.health_checks);
    expect(checks).toMatch(/for svc in local\.services : svc =>/);
    expect(checks).toContain('command     = ["CMD", "node", var.cli_script, "healthcheck"]');
    expect(String(tf.locals.container_definitions)).toMatch(/"healthCheck" => check if k == svc/);
  });

  test("every service waits for its secrets, IAM policies, database, Redis and network path", () => {
    const common = [
      "${aws_iam_role_policy.execution}",
      "${aws_iam_role_policy.database_connect}",
      "${aws_ssm_parameter.redis_url}",
      "${aws_ssm_parameter.runtime}",
      "${aws_sqs_queue.main}",
      "${aws_elasticache_replication_group.this}",
      "${aws_db_instance.this}",
      "${aws_rds_cluster_instance.this}",
      "${terraform_data.network_ready}",
      "${terraform_data.migrate}",
    ];
    const own: Record<string, string[]> = {
      api: ["${aws_iam_role_policy.api_task}", "${aws_lb_listener.https}"],
      worker: ["${aws_iam_role_policy.worker_task}", "${aws_sqs_queue.dlq}", "${aws_ecs_cluster_capacity_providers.this}"],
      scheduler: [],
    };
    for (const [svc, extra] of Object.entries(own)) {
      expect({ svc, depends_on: strings(resource(tf, "aws_ecs_service", svc), "depends_on").sort() }).toEqual({
        svc,
        depends_on: [...common, ...extra].sort(),
      });
    }
    expect(String(resource(tf, "terraform_data", "network_ready").input)).toMatch(/^\$\{concat\(var\.network_dependency_ids, /);
  });

  test("apply runs the migrate task on every new migrate task definition, before the services, and waits for steady state", () => {
    const migrate = resource(tf, "terraform_data", "migrate");
    expect(migrate.count).toBe("${var.run_migrations ? 1 : 0}");
    expect(variableDefault("run_migrations")).toBe(true);
    expect(migrate.triggers_replace).toEqual(['${aws_ecs_task_definition.this["migrate"].arn}']);
    const exec = blocks(migrate.provisioner as Block, "local-exec")[0]!;
    expect(exec.command).toBe("${path.module}/scripts/run-migrate.sh");
    expect(exec.environment).toMatchObject({ TASK_DEFINITION: '${aws_ecs_task_definition.this["migrate"].arn}', SECURITY_GROUPS: "${aws_security_group.tasks.id}" });
    expect(strings(migrate, "depends_on")).toEqual(
      expect.arrayContaining(["${aws_iam_role_policy.migrate_task}", "${aws_db_instance.this}", "${aws_rds_cluster_instance.this}", "${terraform_data.network_ready}"]),
    );
    expect(variableDefault("wait_for_steady_state")).toBe(true);
    for (const svc of ["api", "worker", "scheduler"]) {
      expect(resource(tf, "aws_ecs_service", svc).wait_for_steady_state).toBe("${var.wait_for_steady_state}");
    }
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
  test("HTTPS with the given certificate, HTTP redirected, health check on /healthz", () => {
    const https = resource(tf, "aws_lb_listener", "https");
    expect(https).toMatchObject({ port: 443, protocol: "HTTPS", certificate_arn: "${var.certificate_arn}" });
    const http = resource(tf, "aws_lb_listener", "http");
    const action = blocks(http, "default_action")[0]!;
    expect(action.type).toBe("redirect");
    expect(blocks(action, "redirect")[0]).toMatchObject({ protocol: "HTTPS", port: "443", status_code: "HTTP_301" });

    const tg = resource(tf, "aws_lb_target_group", "api");
    expect(tg).toMatchObject({ target_type: "ip", port: "${local.api_port}" });
    expect(blocks(tg, "health_check")[0]!.path).toBe("${var.api.health_check_path}");
    // Liveness, not readiness: /readyz fails on every task at once when a shared dependency blips.
    expect(String(tf.variables.api!.type)).toContain('health_check_path    = optional(string, "/healthz")');
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
  const TASK_ROLE_REF = /^\$\{aws_iam_role\.task\[(?:"(\w+)"|each\.key)\]\.(id|name)\}$/;
  const SERVICES = ["api", "worker", "scheduler"];
  const APP_USER_ARN = "${local.app_database_user_arn}";
  const DB_SECRET_ARN = "${local.database_secret_arn}";

  /** Task role name -> the policy documents attached to it (inline policies only). */
  function taskPolicies(): Record<string, Block[]> {
    const out: Record<string, Block[]> = {};
    for (const [name, rp] of Object.entries(tf.resources.aws_iam_role_policy ?? {})) {
      const m = TASK_ROLE_REF.exec(String(rp.role));
      if (!m) continue;
      // Task policies must be aws_iam_policy_document data sources, so this test can read them.
      const doc = /^\$\{data\.aws_iam_policy_document\.(\w+)(?:\[0\])?\.json\}$/.exec(String(rp.policy));
      if (!doc) throw new Error(`aws_iam_role_policy.${name} is not an aws_iam_policy_document`);
      // role = aws_iam_role.task[each.key]: attached to every role its for_each names.
      let roles: string[];
      if (m[1]) roles = [m[1]];
      else if (rp.for_each === "${local.services}" || rp.for_each === "${local.ship_metrics ? local.services : toset([])}") roles = SERVICES;
      else throw new Error(`aws_iam_role_policy.${name}: unreadable for_each ${String(rp.for_each)}`);
      for (const role of roles) (out[role] ??= []).push(dataSource(tf, "aws_iam_policy_document", doc[1]!));
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
        // The one wildcard allowed: the log streams of one log group this module creates (EMF metrics).
        if (/^\$\{aws_cloudwatch_log_group\.[a-z0-9_]+\[0\]\.arn\}:\*$/.test(r)) {
          expect(strings(s, "actions").sort()).toEqual(["logs:CreateLogStream", "logs:PutLogEvents"]);
          continue;
        }
        expect(r).not.toContain("*");
        expect([APP_USER_ARN, DB_SECRET_ARN, r]).toContain(r);
        if (r !== APP_USER_ARN && r !== DB_SECRET_ARN) expect(r).toMatch(/^\$\{aws_[a-z0-9_]+\.[a-z0-9_]+\.arn\}$/);
      }
    }
  });

  test("api, worker and scheduler may connect to Postgres as triggers_app only, by IAM token", () => {
    const policies = taskPolicies();
    for (const svc of SERVICES) {
      const connect = statements(policies[svc]).filter((s) => strings(s, "actions").some((a) => a.startsWith("rds-db:")));
      expect({ svc, connect: connect.map((s) => [strings(s, "actions"), strings(s, "resources")]) }).toEqual({
        svc,
        connect: [[["rds-db:connect"], [APP_USER_ARN]]],
      });
    }
    expect(String(tf.locals.app_database_user_arn)).toBe(
      "arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${local.database_resource_id}/${local.app_database_user}",
    );
    expect(String(tf.locals.database_resource_id)).toMatch(/aws_db_instance\.this\[0\]\.resource_id.*aws_rds_cluster\.this\[0\]\.cluster_resource_id/);
    // migrate connects as the master user: no IAM token for it.
    expect(statements(policies.migrate).flatMap((s) => strings(s, "actions"))).not.toContain("rds-db:connect");
  });

  test("api may only send to (and read the attributes of) the main queue", () => {
    const api = statements(taskPolicies().api).filter((s) => strings(s, "actions").some((a) => a.startsWith("sqs:")));
    expect(new Set(api.flatMap((s) => strings(s, "actions")))).toEqual(new Set(["sqs:SendMessage", "sqs:GetQueueAttributes"]));
    for (const s of api) expect(strings(s, "resources")).toEqual([MAIN_QUEUE_ARN]);
  });

  test("ECS Exec permissions exist only behind enable_execute_command (off by default), and sessions are not logged", () => {
    expect(variableDefault("enable_execute_command")).toBe(false);
    // hcl2json: dynamic "statement" { … } -> { dynamic: { statement: [ { for_each, content: [ … ] } ] } }
    const dyn = dataSource(tf, "aws_iam_policy_document", "api_task").dynamic as Block;
    const st = blocks(dyn, "statement")[0]!;
    expect(st.for_each).toBe("${var.enable_execute_command ? [1] : []}");
    expect(strings(blocks(st, "content")[0], "actions").every((a) => a.startsWith("ssmmessages:"))).toBe(true);
    expect(resource(tf, "aws_ecs_service", "api").enable_execute_command).toBe("${var.enable_execute_command}");
    const exec = blocks(blocks(resource(tf, "aws_ecs_cluster", "this"), "configuration")[0], "execute_command_configuration")[0];
    expect(exec?.logging).toBe("NONE");
  });

  test("worker may only receive, delete and extend visibility on the main queue", () => {
    const worker = statements(taskPolicies().worker).filter((s) => strings(s, "actions").some((a) => a.startsWith("sqs:")));
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

  test("scheduler may only connect to Postgres and write its metrics; migrate may only read the master secret", () => {
    const policies = taskPolicies();
    expect(Object.keys(policies).sort()).toEqual(["api", "migrate", "scheduler", "worker"]);
    // …and write the metrics collector's EMF events (metrics-shipping.tf), like api and worker.
    expect(statements(policies.scheduler).flatMap((s) => strings(s, "actions"))).toEqual(["rds-db:connect", "logs:CreateLogStream", "logs:PutLogEvents"]);
    const migrate = statements(policies.migrate);
    expect(migrate.map((s) => [strings(s, "actions"), strings(s, "resources")])).toEqual([[["secretsmanager:GetSecretValue"], [DB_SECRET_ARN]]]);
    // Only the migrate task may read the master secret (the execution role may not).
    for (const [svc, docs] of Object.entries(policies)) {
      if (svc === "migrate") continue;
      expect(statements(docs).flatMap((s) => strings(s, "resources"))).not.toContain(DB_SECRET_ARN);
    }
  });

  test("the execution role reads exactly the tasks' SSM parameters, and no Secrets Manager secret", () => {
    const exec = statements([dataSource(tf, "aws_iam_policy_document", "execution")]);
    expect(exec.flatMap((s) => strings(s, "actions"))).not.toContain("secretsmanager:GetSecretValue");
    const reads = exec.filter((s) => strings(s, "actions").some((a) => a.startsWith("ssm:")));
    expect(reads.map((s) => [strings(s, "actions"), strings(s, "resources")])).toEqual([[["ssm:GetParameters"], ["${values(local.parameter_arns)}"]]]);
    expect(String(tf.locals.parameter_arns)).toContain('concat(keys(local.runtime_parameters), ["redis-url"])');
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
    const a = withMetric("ApproximateAgeOfOldestMessage").find((x) => x.name === "queue_oldest_message");
    expect(a).toBeDefined();
    expect(a!.block).toMatchObject({ namespace: "AWS/SQS", dimensions: { QueueName: "${aws_sqs_queue.main.name}" } });
  });

  test("ALB 5xx rate counts the targets' and the load balancer's own 5xx over all its requests", () => {
    const [a] = withMetric("HTTPCode_Target_5XX_Count");
    expect(a).toBeDefined();
    expect(a!.metrics.sort()).toEqual(["HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "RequestCount"]);
    const byId = Object.fromEntries(blocks(a!.block, "metric_query").map((q) => [String(q.id), q]));
    const metric = (id: string) => blocks(byId[id], "metric")[0]!;
    // The load balancer's 503s (no healthy target) never reach a target group: count them and all
    // requests at load-balancer level.
    expect(metric("elb_errors")).toMatchObject({ metric_name: "HTTPCode_ELB_5XX_Count", dimensions: { LoadBalancer: "${aws_lb.this.arn_suffix}" } });
    expect(metric("requests")).toMatchObject({ metric_name: "RequestCount", dimensions: { LoadBalancer: "${aws_lb.this.arn_suffix}" } });
    const expr = blocks(a!.block, "metric_query").find((q) => q.return_data === true);
    expect(String(expr?.expression)).toBe("IF(requests > 0, 100 * (FILL(target_errors, 0) + FILL(elb_errors, 0)) / requests, 0)");
  });

  test("Redis memory, per node of the replication group", () => {
    const [a] = withMetric("DatabaseMemoryUsagePercentage");
    expect(a?.block).toMatchObject({
      namespace: "AWS/ElastiCache",
      count: "${var.redis_num_cache_clusters}",
      comparison_operator: "GreaterThanThreshold",
      threshold: "${var.alarm_redis_memory_percent}",
      dimensions: { CacheClusterId: '${format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1)}' },
    });
    expect(variableDefault("alarm_redis_memory_percent")).toBe(80);
  });

  test("database CPU and free storage", () => {
    const [cpu] = withMetric("CPUUtilization");
    expect(cpu?.block.namespace).toBe("AWS/RDS");
    const storage = alarms().find((a) => a.name === "database_free_storage");
    expect(storage?.block).toMatchObject({ namespace: "AWS/RDS", comparison_operator: "LessThanThreshold" });
    expect(storage?.block.metric_name).toBe("${local.database_free_storage_metric}");
    expect(String(tf.locals.database_free_storage_metric)).toContain('"FreeStorageSpace"');
  });

  test("expiry overdue: no completed run (counted from the scheduler's log) for expiry_overdue_seconds", () => {
    const a = alarms().find((x) => x.name === "expiry_overdue");
    expect(a?.block).toMatchObject({
      statistic: "Sum",
      period: 60,
      evaluation_periods: "${local.expiry_overdue_periods}",
      datapoints_to_alarm: "${local.expiry_overdue_periods}",
      comparison_operator: "LessThanThreshold",
      threshold: 1,
      treat_missing_data: "breaching",
    });
    const filter = resource(tf, "aws_cloudwatch_log_metric_filter", "expiry_runs");
    expect(filter.log_group_name).toBe('${aws_cloudwatch_log_group.this["scheduler"].name}');
    // The pattern matches the lines the scheduler writes after each completed run.
    const source = readFileSync(join(REPO_ROOT, "src", "roles", "scheduler.ts"), "utf8");
    for (const line of ["expiry run finished", "expiry run ended with expired rows left"]) {
      expect(String(filter.pattern)).toContain(line);
      expect(source).toContain(line);
    }
    expect(variableDefault("expiry_overdue_seconds")).toBe(600);
  });

  test("expiry overdue from the gauge: the scheduler's triggers_expiry_seconds_since_last_run, as shipped, above expiry_overdue_seconds", () => {
    const a = alarms().find((x) => x.name === "expiry_gauge_overdue");
    expect(a?.block).toMatchObject({
      count: "${local.ship_metrics ? 1 : 0}",
      namespace: "${var.metrics_shipping.namespace}",
      metric_name: "triggers_expiry_seconds_since_last_run",
      dimensions: { role: "scheduler" },
      statistic: "Minimum",
      comparison_operator: "GreaterThanThreshold",
      threshold: "${var.expiry_overdue_seconds}",
      treat_missing_data: "breaching",
    });
    // The gauge is exported by the scheduler and kept by the collector, with the role dimension.
    expect(JSON.stringify(tf.locals.shipped_metrics)).toContain("triggers_expiry_seconds_since_last_run");
    expect(readFileSync(join(REPO_ROOT, "src", "jobs", "expiry-heartbeat.ts"), "utf8")).toContain('name: "triggers_expiry_seconds_since_last_run"');
  });

  test("partitions waiting: the oldest partition held back from the drop (from the scheduler's log) past partitions_waiting_alarm_seconds", () => {
    const a = alarms().find((x) => x.name === "partitions_waiting");
    expect(a?.block).toMatchObject({
      statistic: "Maximum",
      comparison_operator: "GreaterThanThreshold",
      threshold: "${var.partitions_waiting_alarm_seconds}",
      treat_missing_data: "notBreaching",
    });
    const filter = resource(tf, "aws_cloudwatch_log_metric_filter", "partitions_waiting");
    expect(filter.log_group_name).toBe('${aws_cloudwatch_log_group.this["scheduler"].name}');
    const source = readFileSync(join(REPO_ROOT, "src", "roles", "scheduler.ts"), "utf8");
    expect(String(filter.pattern)).toContain("partitions past their time wait for a live delivery");
    expect(source).toContain("partitions past their time wait for a live delivery");
    expect(JSON.stringify(filter)).toContain("$.oldestWaitingSeconds");
    expect(source).toContain("oldestWaitingSeconds");
    expect(variableDefault("partitions_waiting_alarm_seconds")).toBe(259200);
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
      "redis_url_parameter_arn",
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
