################################################################################
# Migrations on deploy: the migrate task runs, and must succeed, before the services change
################################################################################

# Runs the one-off migrate task whenever its task definition changes (a new image, new settings)
# and waits for it; a failed or timed-out migration fails the apply before any service is created
# or rolled onto the new image (they depend on this resource). Runs on the machine that runs
# Terraform, with the AWS CLI and that machine's credentials (see README, "Migrations on deploy").
resource "terraform_data" "migrate" {
  count = var.run_migrations ? 1 : 0

  triggers_replace = [aws_ecs_task_definition.this["migrate"].arn]

  provisioner "local-exec" {
    interpreter = ["bash"]
    command     = "${path.module}/scripts/run-migrate.sh"

    environment = {
      CLUSTER         = aws_ecs_cluster.this.name
      TASK_DEFINITION = aws_ecs_task_definition.this["migrate"].arn
      SUBNETS         = join(",", var.private_subnet_ids)
      SECURITY_GROUPS = aws_security_group.tasks.id
      AWS_REGION      = local.region
      LOG_GROUP       = aws_cloudwatch_log_group.this["migrate"].name
      TIMEOUT_SECONDS = tostring(var.migration_timeout_seconds)
    }
  }

  # Everything the migrate task needs at start: its secret and permissions, the database, the
  # network path to ECR, Secrets Manager and Logs.
  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.migrate_task,
    aws_ssm_parameter.runtime,
    aws_db_instance.this,
    aws_rds_cluster_instance.this,
    aws_vpc_security_group_egress_rule.tasks_https,
    aws_vpc_security_group_egress_rule.tasks_to_database,
    aws_vpc_security_group_ingress_rule.database_from_tasks,
    terraform_data.network_ready,
  ]
}
