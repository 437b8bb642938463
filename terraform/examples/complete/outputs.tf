output "api_url" {
  description = "Base URL of the API."
  value       = module.triggers.api_url
}

output "queue_url" {
  description = "URL of the events queue."
  value       = module.triggers.queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.triggers.dlq_url
}

output "database_endpoint" {
  description = "Host name of the database writer."
  value       = module.triggers.database_endpoint
}

output "database_secret_arn" {
  description = "RDS-managed secret with the master credentials (DATA_API_SECRET_ARN)."
  value       = module.triggers.database_secret_arn
}

output "database_cluster_arn" {
  description = "Aurora cluster ARN (DATA_API_RESOURCE_ARN); null with database_engine = \"rds\"."
  value       = module.triggers.database_cluster_arn
}

output "redis_url_parameter_arn" {
  description = "SSM SecureString parameter holding REDIS_URL."
  value       = module.triggers.redis_url_parameter_arn
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.triggers.cluster_name
}

output "migrate_task_definition_arn" {
  description = "Task definition of the one-off migrate task."
  value       = module.triggers.migrate_task_definition_arn
}

output "run_task_network_configuration" {
  description = "Value for `aws ecs run-task --network-configuration` (one-off migrate and keys tasks)."
  value = jsonencode({
    awsvpcConfiguration = {
      subnets        = module.triggers.task_subnet_ids
      securityGroups = [module.triggers.task_security_group_id]
      assignPublicIp = "DISABLED"
    }
  })
}
