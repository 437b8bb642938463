/**
 * The alarms for what fails quietly (alarms-platform.tf), the database's exported-logs group and
 * the dashboard (dashboard.tf), read from the HCL.
 */
import { blocks, loadTerraform, MODULE_DIR, resource, type Block, type TfConfig } from "./load-hcl";

let tf: TfConfig;

beforeAll(async () => {
  tf = await loadTerraform(MODULE_DIR);
});

/** Metric names an alarm reads, directly or through its metric queries. */
function metricsOf(alarm: Block): string[] {
  const fromQueries = blocks(alarm, "metric_query").flatMap((q) => blocks(q, "metric").map((m) => String(m.metric_name)));
  return [...(alarm.metric_name === undefined ? [] : [String(alarm.metric_name)]), ...fromQueries];
}

function alarmWith(metric: string, filter: (a: Block) => boolean = () => true): Block {
  const found = Object.values(tf.resources.aws_cloudwatch_metric_alarm ?? {}).filter((a) => metricsOf(a).includes(metric) && filter(a));
  if (found.length !== 1) throw new Error(`${found.length} alarms read ${metric}`);
  return found[0]!;
}

function variableDefault(name: string): unknown {
  const v = tf.variables[name];
  if (!v) throw new Error(`variable ${name} not declared`);
  return v.default;
}

test("running tasks below desired, per service, for alarm_task_shortfall_minutes", () => {
  const a = alarmWith("RunningTaskCount");
  expect(a.for_each).toBe("${local.services}");
  expect(metricsOf(a).sort()).toEqual(["DesiredTaskCount", "RunningTaskCount"]);
  for (const q of blocks(a, "metric_query").flatMap((x) => blocks(x, "metric"))) {
    expect(q).toMatchObject({ namespace: "ECS/ContainerInsights", dimensions: { ClusterName: "${aws_ecs_cluster.this.name}", ServiceName: "${each.key}" } });
  }
  const expression = blocks(a, "metric_query").find((q) => q.return_data === true)?.expression;
  expect(String(expression)).toMatch(/^desired - FILL\(running, 0\)$/);
  expect(a).toMatchObject({ comparison_operator: "GreaterThanThreshold", threshold: 0, evaluation_periods: "${var.alarm_task_shortfall_minutes}" });
  expect(variableDefault("alarm_task_shortfall_minutes")).toBe(10);
});

test("age of the oldest dead-lettered message, before SQS drops it", () => {
  const a = alarmWith("ApproximateAgeOfOldestMessage", (x) => String(JSON.stringify(x.dimensions)).includes("dlq"));
  expect(a).toMatchObject({ namespace: "AWS/SQS", dimensions: { QueueName: "${aws_sqs_queue.dlq.name}" }, threshold: "${var.alarm_dlq_oldest_message_age_seconds}" });
  expect(Number(variableDefault("alarm_dlq_oldest_message_age_seconds"))).toBeLessThan(Number(variableDefault("sqs_dlq_message_retention_seconds")));
});

test.each([
  ["DatabaseConnections", "GreaterThanThreshold", "alarm_database_connections"],
  ["FreeableMemory", "LessThanThreshold", "alarm_database_freeable_memory_bytes"],
  ["ACUUtilization", "GreaterThanThreshold", "alarm_aurora_acu_percent"],
])("database %s (%s var.%s)", (metric, comparison, variable) => {
  const a = alarmWith(metric);
  expect(a).toMatchObject({ namespace: "AWS/RDS", comparison_operator: comparison, threshold: `\${var.${variable}}` });
  expect(typeof variableDefault(variable)).toBe("number");
  if (metric === "ACUUtilization") expect(a.count).toBe("${local.is_aurora ? 1 : 0}");
  else expect(a.dimensions).toBe("${local.database_alarm_dimensions}");
});

test.each([
  ["EngineCPUUtilization", "alarm_redis_cpu_percent"],
  ["Evictions", "alarm_redis_evictions"],
])("Redis %s per node (var.%s)", (metric, variable) => {
  const a = alarmWith(metric);
  expect(a).toMatchObject({ namespace: "AWS/ElastiCache", count: "${var.redis_num_cache_clusters}", threshold: `\${var.${variable}}` });
  expect(String(JSON.stringify(a.dimensions))).toContain("replication_group_id");
});

test("API p99 latency at the load balancer", () => {
  const a = alarmWith("TargetResponseTime");
  expect(a).toMatchObject({
    namespace: "AWS/ApplicationELB",
    extended_statistic: "p99",
    threshold: "${var.alarm_api_p99_latency_seconds}",
    dimensions: { LoadBalancer: "${aws_lb.this.arn_suffix}", TargetGroup: "${aws_lb_target_group.api.arn_suffix}" },
  });
});

test("every alarm notifies the alarm actions, and the topic is an output", () => {
  for (const [name, a] of Object.entries(tf.resources.aws_cloudwatch_metric_alarm ?? {})) {
    expect({ name, actions: a.alarm_actions, ok: a.ok_actions }).toEqual({ name, actions: "${local.alarm_actions}", ok: "${local.alarm_actions}" });
  }
  expect(tf.outputs.alarm_topic_arn?.value).toBe("${one(aws_sns_topic.alarms[*].arn)}");
});

test("the database's exported logs go to a group this module owns, with retention, created before the database", () => {
  const group = resource(tf, "aws_cloudwatch_log_group", "database");
  expect(String(group.name)).toContain("/aws/rds/instance/${var.name}/postgresql");
  expect(String(group.name)).toContain("/aws/rds/cluster/${var.name}/postgresql");
  expect(group.retention_in_days).toBe("${var.log_retention_days}");
  for (const [type, name] of [["aws_db_instance", "this"], ["aws_rds_cluster", "this"]] as const) {
    expect(resource(tf, type, name).depends_on).toEqual(["${aws_cloudwatch_log_group.database}"]);
  }
});

test("a dashboard shows ingest, latency, queue depth and age, drain rate, database and Redis health, errors by status", () => {
  expect(String(resource(tf, "aws_cloudwatch_dashboard", "this").dashboard_body)).toContain("for i, w in local.dashboard_widgets");
  expect(String(tf.locals.dashboard_widgets)).toBe("${concat(local.dashboard_platform_widgets, local.dashboard_service_widgets)}");
  const body = JSON.stringify(tf.locals.dashboard_platform_widgets).replace(/\\"/g, "\"");
  for (const metric of [
    "RequestCount",
    "TargetResponseTime",
    "ApproximateNumberOfMessagesVisible",
    "ApproximateAgeOfOldestMessage",
    "NumberOfMessagesDeleted",
    "DatabaseConnections",
    "FreeableMemory",
    "EngineCPUUtilization",
    "DatabaseMemoryUsagePercentage",
    "HTTPCode_Target_2XX_Count",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
    "HTTPCode_ELB_5XX_Count",
    "RunningTaskCount",
  ]) {
    expect({ metric, shown: body.includes(`"${metric}"`) }).toEqual({ metric, shown: true });
  }
  expect(tf.outputs.dashboard_name).toBeDefined();
});

test("with metrics shipping (on by default), the dashboard shows inbox leases, API errors by status code and the largest subscription backlogs", () => {
  const service = String(tf.locals.dashboard_service_widgets);
  expect(service).toMatch(/: w if local\.ship_metrics\]\}$/);
  expect(service).toContain('"triggers_inbox_leased_total", "role", "api"');
  expect(service).toContain("SELECT SUM(triggers_http_requests_total) FROM SCHEMA(");
  expect(service).toContain("GROUP BY status");
  expect(service).toMatch(/SELECT MAX\(triggers_subscription_backlog\) FROM SCHEMA\(.*, tenant, subscription\) GROUP BY tenant, subscription ORDER BY MAX\(\) DESC LIMIT/);
  expect((tf.variables.metrics_shipping!.default as Record<string, unknown>) ?? {}).toEqual({});
  expect(String(tf.variables.metrics_shipping!.type)).toContain("enabled            = optional(bool, true)");
});
