/**
 * The module's options (VPC endpoints, WAF, ALB access logs and deletion protection, read-only root
 * filesystem, Fargate Spot for workers) and its outputs, read from the HCL. The example's plan
 * with every option on is in plan.test.ts.
 */
import { blocks, EXAMPLE_DIR, loadTerraform, MODULE_DIR, resource, type TfConfig } from "./load-hcl";

let tf: TfConfig;
let example: TfConfig;

beforeAll(async () => {
  tf = await loadTerraform(MODULE_DIR);
  example = await loadTerraform(EXAMPLE_DIR);
});

const defaultOf = (name: string): unknown => tf.variables[name]?.default;

test("VPC endpoints for every API the tasks call, off by default, waited for by the services", () => {
  expect(String(tf.locals.interface_endpoints)).toBe('${var.vpc_endpoints.enabled ? toset(["sqs", "ssm", "secretsmanager", "ecr.api", "ecr.dkr", "logs"]) : toset([])}');
  expect(resource(tf, "aws_vpc_endpoint", "interface")).toMatchObject({ private_dns_enabled: true, subnet_ids: "${var.private_subnet_ids}" });
  expect(resource(tf, "aws_vpc_endpoint", "s3")).toMatchObject({ vpc_endpoint_type: "Gateway", route_table_ids: "${var.vpc_endpoints.route_table_ids}" });
  // Reachable from the tasks only.
  expect(resource(tf, "aws_vpc_security_group_ingress_rule", "endpoints_from_tasks").referenced_security_group_id).toBe("${aws_security_group.tasks.id}");
  expect(String(resource(tf, "terraform_data", "network_ready").input)).toContain("aws_vpc_endpoint.interface");
  expect(defaultOf("vpc_endpoints")).toEqual({});
  expect(String(tf.variables.vpc_endpoints!.type)).toContain("enabled         = optional(bool, false)");
});

test("WAF association and ALB access logs are options; the ALB shares the database's deletion protection", () => {
  expect(resource(tf, "aws_wafv2_web_acl_association", "api")).toMatchObject({ count: "${var.waf_web_acl_arn == null ? 0 : 1}", resource_arn: "${aws_lb.this.arn}" });
  const lb = resource(tf, "aws_lb", "this");
  expect(lb.enable_deletion_protection).toBe("${var.deletion_protection}");
  const logs = blocks(lb.dynamic as Record<string, unknown>, "access_logs")[0]!;
  expect(logs.for_each).toBe("${var.alb_access_logs == null ? [] : [var.alb_access_logs]}");
  expect(defaultOf("alb_access_logs")).toBeNull();
  expect(defaultOf("waf_web_acl_arn")).toBeNull();
});

test("containers run with a read-only root filesystem by default", () => {
  // ECS Exec (first API key) needs a writable root filesystem in the api container.
  expect(String(tf.locals.container_definitions)).toContain('readonlyRootFilesystem = var.readonly_root_filesystem && !(svc == "api" && var.enable_execute_command)');
  expect(defaultOf("readonly_root_filesystem")).toBe(true);
});

test("workers can run on Fargate Spot beyond the first task", () => {
  const worker = resource(tf, "aws_ecs_service", "worker");
  expect(worker.launch_type).toBe('${var.worker.fargate_spot ? null : "FARGATE"}');
  const strategy = blocks(worker.dynamic as Record<string, unknown>, "capacity_provider_strategy")[0]!;
  expect(String(strategy.for_each)).toContain('{ provider = "FARGATE", base = 1, weight = 0 }, { provider = "FARGATE_SPOT", base = 0, weight = 1 }');
  expect(resource(tf, "aws_ecs_cluster_capacity_providers", "this").capacity_providers).toEqual(["FARGATE", "FARGATE_SPOT"]);
  expect(String(tf.variables.worker!.type)).toContain("fargate_spot         = optional(bool, false)");
});

test("the outputs a platform team wires into other stacks", () => {
  for (const name of ["execution_role_arn", "task_role_arns", "security_group_ids", "alb_arn", "target_group_arn", "https_listener_arn", "log_group_names", "dashboard_name", "alarm_topic_arn", "ssm_parameter_arns", "vpc_endpoint_ids"]) {
    expect({ name, declared: tf.outputs[name] !== undefined }).toEqual({ name, declared: true });
  }
});

test("the example offers one NAT gateway per AZ, flow logs, endpoints, WAF, access logs and Spot workers", () => {
  // The VPC is plain resources (vpc.tf), so the example needs nothing newer than the module does.
  expect(example.modules.vpc).toBeUndefined();
  expect(String(example.locals.nat_gateway_count)).toBe("${var.one_nat_gateway_per_az ? length(local.azs) : 1}");
  expect(resource(example, "aws_nat_gateway", "this").count).toBe("${local.nat_gateway_count}");
  expect(resource(example, "aws_flow_log", "this").count).toBe("${var.enable_flow_log ? 1 : 0}");
  expect(example.variables.enable_flow_log?.default).toBe(true);
  const call = example.modules.triggers!;
  expect(call.waf_web_acl_arn).toBe("${var.waf_web_acl_arn}");
  expect(String(JSON.stringify(call.vpc_endpoints))).toContain("aws_route_table.private[*].id");
});

test("metrics shipping is on by default and all of it goes with it: the collector containers, the EMF log group and the task roles' permission", () => {
  expect(String(tf.locals.ship_metrics)).toBe("${var.metrics_shipping.enabled}");
  expect(String(tf.locals.container_definitions)).toContain("[for k, collector in local.collector_containers : collector if k == svc && local.ship_metrics]");
  expect(resource(tf, "aws_cloudwatch_log_group", "metrics").count).toBe("${local.ship_metrics ? 1 : 0}");
  expect(resource(tf, "aws_iam_role_policy", "metrics_shipping").for_each).toBe("${local.ship_metrics ? local.services : toset([])}");
  // The collector writes to the group Terraform created, under the same name.
  expect(String(tf.locals.collector_config)).toMatch(/log_group_name += local\.metrics_log_group/);
  expect(resource(tf, "aws_cloudwatch_log_group", "metrics").name).toBe("${local.metrics_log_group}");
  expect(tf.locals.metrics_log_group).toBe("/ecs/${var.name}/metrics");
});
