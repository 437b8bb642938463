output "api_url" {
  description = "Base URL of the API."
  value       = "https://${coalesce(var.domain_name, aws_lb.this.dns_name)}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point domain_name at it when route53_zone_id is not given)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for alias records."
  value       = aws_lb.this.zone_id
}

output "queue_url" {
  description = "URL of the events queue (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "ARN of the events queue."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (SQS_DLQ_URL)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "database_endpoint" {
  description = "Host name of the database writer."
  value       = local.database_endpoint
}

output "database_name" {
  description = "Name of the application database (DATA_API_DATABASE)."
  value       = var.database_name
}

output "database_url" {
  description = "DATABASE_URL of the migrate task: the master user, no password (the process reads it from database_secret_arn)."
  value       = local.database_url
}

output "app_database_url" {
  description = "DATABASE_URL of api, worker and scheduler: triggers_app with RDS IAM authentication (DATABASE_IAM_AUTH=true), no password."
  value       = local.app_database_url
}

output "database_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret with the master user name and password (DATA_API_SECRET_ARN)."
  value       = local.database_secret_arn
}

output "database_cluster_arn" {
  description = "ARN of the Aurora cluster (DATA_API_RESOURCE_ARN); null for database_engine = \"rds\"."
  value       = local.is_aurora ? aws_rds_cluster.this[0].arn : null
}

output "data_api_migrator_policy_arn" {
  description = "IAM policy to attach to whoever runs migrations through the Data API; null when the Data API is off."
  value       = one(aws_iam_policy.data_api_migrator[*].arn)
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_url_parameter_arn" {
  description = "ARN of the SSM SecureString parameter holding REDIS_URL (with the auth token)."
  value       = aws_ssm_parameter.redis_url.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS service names by process."
  value       = { api = aws_ecs_service.api.name, worker = aws_ecs_service.worker.name, scheduler = aws_ecs_service.scheduler.name }
}

output "migrate_task_definition_arn" {
  description = "ARN (with revision) of the one-off migrate task definition; also runs `keys list` / `keys revoke` with a command override (e.g. [\"keys\",\"list\"])."
  value       = aws_ecs_task_definition.this["migrate"].arn
}

output "task_subnet_ids" {
  description = "Subnets for one-off tasks (aws ecs run-task --network-configuration)."
  value       = var.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group for one-off tasks (reaches Postgres and Redis)."
  value       = aws_security_group.tasks.id
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify; null when create_alarm_topic = false."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (ingest, latency, queue, drain rate, database, Redis, errors, tasks)."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "execution_role_arn" {
  description = "ARN of the ECS execution role (image pull, logs, SSM parameters). Allow it in the repository policy of an ECR repository in another account."
  value       = aws_iam_role.execution.arn
}

output "task_role_arns" {
  description = "ARNs of the task roles by process (api, worker, scheduler, migrate)."
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "security_group_ids" {
  description = "Security groups by purpose: alb, api (api tasks), tasks (every task), database, redis, endpoints (null without vpc_endpoints)."
  value = {
    alb       = aws_security_group.alb.id
    api       = aws_security_group.api.id
    tasks     = aws_security_group.tasks.id
    database  = aws_security_group.database.id
    redis     = aws_security_group.redis.id
    endpoints = one(aws_security_group.endpoints[*].id)
  }
}

output "alb_arn" {
  description = "ARN of the load balancer (WAF associations, access-log and Shield setups of your own)."
  value       = aws_lb.this.arn
}

output "target_group_arn" {
  description = "ARN of the api target group."
  value       = aws_lb_target_group.api.arn
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener (add listener rules or certificates)."
  value       = aws_lb_listener.https.arn
}

output "log_group_names" {
  description = "CloudWatch log groups by process (api, worker, scheduler, migrate), of the database's exported log (database) and of the collector's embedded-metric events (metrics, with metrics_shipping)."
  value       = merge({ for k, g in aws_cloudwatch_log_group.this : k => g.name }, { database = aws_cloudwatch_log_group.database.name }, { for g in aws_cloudwatch_log_group.metrics : "metrics" => g.name })
}

output "ssm_parameter_arns" {
  description = "ARNs of the SSM parameters the tasks read at start, by name (app-database-url, database-url, database-password-secret-arn, redis-url)."
  value       = local.parameter_arns
}

output "vpc_endpoint_ids" {
  description = "Ids of the VPC endpoints the module created (empty without vpc_endpoints)."
  value       = concat([for e in aws_vpc_endpoint.interface : e.id], aws_vpc_endpoint.s3[*].id)
}
