################################################################################
# Alarms for what breaks quietly: missing tasks, dead letters about to expire, database and
# Redis saturation, API latency. Same actions as alarms.tf (local.alarm_actions).
################################################################################

# A service with fewer running tasks than desired for alarm_task_shortfall_minutes: tasks that
# crash at start, cannot pull the image or read their secrets, or a scheduler that died. Its
# /healthz never answers, so nothing else fires (the scheduler has no load balancer probe).
resource "aws_cloudwatch_metric_alarm" "tasks_below_desired" {
  for_each = local.services

  alarm_name        = "${var.name}-${each.key}-tasks-below-desired"
  alarm_description = "ECS service ${each.key} has run fewer tasks than desired for ${var.alarm_task_shortfall_minutes} minutes: its tasks stop at start or were not placed. See the service's events and the log group /ecs/${var.name}/${each.key}."

  evaluation_periods  = var.alarm_task_shortfall_minutes
  datapoints_to_alarm = var.alarm_task_shortfall_minutes
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "missing"

  metric_query {
    id          = "desired"
    return_data = false

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      dimensions  = { ClusterName = aws_ecs_cluster.this.name, ServiceName = each.key }
      stat        = "Minimum"
      period      = 60
    }
  }

  metric_query {
    id          = "running"
    return_data = false

    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = aws_ecs_cluster.this.name, ServiceName = each.key }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id          = "shortfall"
    label       = "Desired minus running tasks"
    expression  = "desired - FILL(running, 0)"
    return_data = true
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# dlq-not-empty fires once; this fires again before SQS deletes a dead-lettered message at the end
# of its retention (messages keep the age they had on the main queue).
resource "aws_cloudwatch_metric_alarm" "dlq_oldest_message" {
  alarm_name        = "${var.name}-dlq-oldest-message"
  alarm_description = "A message in ${aws_sqs_queue.dlq.name} is older than ${var.alarm_dlq_oldest_message_age_seconds}s; SQS deletes it at ${var.sqs_dlq_message_retention_seconds}s. Redrive or save it before then."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateAgeOfOldestMessage"
  dimensions  = { QueueName = aws_sqs_queue.dlq.name }
  statistic   = "Maximum"
  period      = 300

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_dlq_oldest_message_age_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "database_connections" {
  alarm_name        = "${var.name}-database-connections"
  alarm_description = "More than ${var.alarm_database_connections} database connections: near max_connections new logins (and IAM token logins of new tasks) are refused."

  namespace   = "AWS/RDS"
  metric_name = "DatabaseConnections"
  dimensions  = local.database_alarm_dimensions
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_database_connections
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "database_freeable_memory" {
  alarm_name        = "${var.name}-database-freeable-memory"
  alarm_description = "Database freeable memory below ${var.alarm_database_freeable_memory_bytes} bytes for 15 minutes: the instance swaps or its cache shrinks; size it up."

  namespace   = "AWS/RDS"
  metric_name = "FreeableMemory"
  dimensions  = local.database_alarm_dimensions
  statistic   = "Minimum"
  period      = 300

  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = var.alarm_database_freeable_memory_bytes
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Aurora Serverless v2 at its ceiling: it cannot scale further, so queries queue.
resource "aws_cloudwatch_metric_alarm" "aurora_acu_utilization" {
  count = local.is_aurora ? 1 : 0

  alarm_name        = "${var.name}-aurora-acu-utilization"
  alarm_description = "Aurora capacity above ${var.alarm_aurora_acu_percent}% of aurora_max_capacity (${var.aurora_max_capacity} ACUs) for 15 minutes: raise the maximum."

  namespace   = "AWS/RDS"
  metric_name = "ACUUtilization"
  dimensions  = { DBClusterIdentifier = aws_rds_cluster.this[0].cluster_identifier }
  statistic   = "Average"
  period      = 300

  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_aurora_acu_percent
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Redis runs commands on one thread: EngineCPUUtilization (that thread) saturates long before CPUUtilization.
resource "aws_cloudwatch_metric_alarm" "redis_cpu" {
  count = var.redis_num_cache_clusters

  alarm_name        = "${var.name}-redis-cpu-${count.index + 1}"
  alarm_description = "Redis node ${format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1)} engine thread above ${var.alarm_redis_cpu_percent}%: rate-limit and idempotency calls slow down and time out."

  namespace   = "AWS/ElastiCache"
  metric_name = "EngineCPUUtilization"
  dimensions  = { CacheClusterId = format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1) }
  statistic   = "Average"
  period      = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_redis_cpu_percent
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# With maxmemory-policy noeviction there should be none: an eviction means the parameter group
# was changed, and BullMQ job keys may have been lost.
resource "aws_cloudwatch_metric_alarm" "redis_evictions" {
  count = var.redis_num_cache_clusters

  alarm_name        = "${var.name}-redis-evictions-${count.index + 1}"
  alarm_description = "Redis node ${format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1)} evicted keys: BullMQ jobs and idempotency entries may be lost. Check maxmemory-policy (must be noeviction)."

  namespace   = "AWS/ElastiCache"
  metric_name = "Evictions"
  dimensions  = { CacheClusterId = format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1) }
  statistic   = "Sum"
  period      = 60

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_redis_evictions
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Mostly POST /events (202 after one SQS send): slow sends, a saturated event loop or Redis.
resource "aws_cloudwatch_metric_alarm" "api_latency_p99" {
  alarm_name        = "${var.name}-api-latency-p99"
  alarm_description = "p99 of the API's response time at the load balancer above ${var.alarm_api_p99_latency_seconds}s, 3 of 5 minutes."

  namespace          = "AWS/ApplicationELB"
  metric_name        = "TargetResponseTime"
  dimensions         = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  extended_statistic = "p99"
  period             = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_api_p99_latency_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# RDS writes exported logs (enabled_cloudwatch_logs_exports) to this group. Created here, before
# the database, so it has a retention and belongs to this state; left to RDS it would be created
# on first export, kept forever and survive a destroy.
resource "aws_cloudwatch_log_group" "database" {
  name              = local.is_rds ? "/aws/rds/instance/${var.name}/postgresql" : "/aws/rds/cluster/${var.name}/postgresql"
  retention_in_days = var.log_retention_days

  tags = local.tags
}
