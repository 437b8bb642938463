################################################################################
# CloudWatch alarms
################################################################################

# Not encrypted with the AWS-managed aws/sns key on purpose: CloudWatch cannot publish to a
# topic under that key (its key policy cannot grant cloudwatch.amazonaws.com). Alarm messages
# carry no data beyond resource names; pass a topic with a customer-managed key in alarm_actions
# if policy requires encryption.
resource "aws_sns_topic" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  name = "${var.name}-alarms"

  tags = local.tags
}

locals {
  alarm_actions = concat(aws_sns_topic.alarms[*].arn, var.alarm_actions)

  # RDS publishes per instance; Aurora per cluster (aggregated over its instances).
  # (tomap: both branches of a conditional must have the same type.)
  database_alarm_dimensions = local.is_rds ? tomap({ DBInstanceIdentifier = aws_db_instance.this[0].identifier }) : tomap({ DBClusterIdentifier = aws_rds_cluster.this[0].cluster_identifier })
  # Aurora storage grows by itself; what can run out is the instances' local (temp) storage.
  database_free_storage_metric = local.is_rds ? "FreeStorageSpace" : "FreeLocalStorage"
}

# Any message in the DLQ is an event that was never stored: someone must look.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name        = "${var.name}-dlq-not-empty"
  alarm_description = "Messages in ${aws_sqs_queue.dlq.name}: events the workers failed to store ${var.sqs_max_receive_count} times. Inspect, fix, then redrive them to the main queue."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = aws_sqs_queue.dlq.name }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "queue_oldest_message" {
  alarm_name        = "${var.name}-queue-oldest-message"
  alarm_description = "The oldest message in ${aws_sqs_queue.main.name} is older than ${var.alarm_oldest_message_age_seconds}s: workers are down or not keeping up, so accepted events are not reaching the inbox."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateAgeOfOldestMessage"
  dimensions  = { QueueName = aws_sqs_queue.main.name }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_oldest_message_age_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# A rate, not a count, so the threshold means the same at 10 and at 10 000 requests/s. The
# numerator counts the targets' 5xx and the load balancer's own (502/503/504 when no target is
# healthy or a target fails), over every request the load balancer received. The HTTPCode_*
# metrics are only published when non-zero, hence FILL(…, 0).
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name        = "${var.name}-api-5xx-rate"
  alarm_description = "More than ${var.alarm_api_5xx_percent}% of API responses are 5xx, from the tasks (503: SQS, Postgres or Redis unreachable) or from the load balancer itself (no healthy task, task errors)."

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_api_5xx_percent
  treat_missing_data  = "notBreaching"

  metric_query {
    id          = "target_errors"
    return_data = false

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id          = "elb_errors"
    return_data = false

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id          = "requests"
    return_data = false

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id          = "error_rate"
    label       = "5xx responses, %"
    expression  = "IF(requests > 0, 100 * (FILL(target_errors, 0) + FILL(elb_errors, 0)) / requests, 0)"
    return_data = true
  }

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "api_unhealthy_hosts" {
  alarm_name        = "${var.name}-api-unhealthy-hosts"
  alarm_description = "api tasks fail the load balancer's /healthz probe: tasks are crashing or hanging."

  namespace   = "AWS/ApplicationELB"
  metric_name = "UnHealthyHostCount"
  dimensions  = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "database_cpu" {
  alarm_name        = "${var.name}-database-cpu"
  alarm_description = "Database CPU above ${var.alarm_database_cpu_percent}% for 15 minutes."

  namespace   = "AWS/RDS"
  metric_name = "CPUUtilization"
  dimensions  = local.database_alarm_dimensions
  statistic   = "Average"
  period      = 300

  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_database_cpu_percent
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

resource "aws_cloudwatch_metric_alarm" "database_free_storage" {
  alarm_name        = "${var.name}-database-free-storage"
  alarm_description = "Database free storage below ${var.alarm_database_free_storage_bytes} bytes."

  namespace   = "AWS/RDS"
  metric_name = local.database_free_storage_metric
  dimensions  = local.database_alarm_dimensions
  statistic   = "Minimum"
  period      = 300

  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.alarm_database_free_storage_bytes
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Per node (ElastiCache names the nodes of a replication group <id>-001, -002, …). With
# noeviction a full Redis refuses writes: rate limits, idempotency and BullMQ jobs fail.
resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  count = var.redis_num_cache_clusters

  alarm_name        = "${var.name}-redis-memory-${count.index + 1}"
  alarm_description = "Redis node ${format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1)} uses more than ${var.alarm_redis_memory_percent}% of its memory; at 100% it refuses writes (maxmemory-policy noeviction)."

  namespace   = "AWS/ElastiCache"
  metric_name = "DatabaseMemoryUsagePercentage"
  dimensions  = { CacheClusterId = format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, count.index + 1) }
  statistic   = "Maximum"
  period      = 60

  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_redis_memory_percent
  treat_missing_data  = "missing"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Expiry: completed runs, counted from the scheduler's log lines ("expiry run finished" at info,
# "expiry run ended with expired rows left…" at warn). The same signal as the scheduler's
# triggers_expiry_seconds_since_last_run gauge and its /readyz `expiry` check, with no Prometheus
# scraper needed. Below info level the lines are not written, so there is no alarm then.
locals {
  expiry_runs_logged = contains(["info", "debug", "trace"], var.log_level)
  # One-minute periods, every one of them without a completed run.
  expiry_overdue_periods = max(1, ceil(var.expiry_overdue_seconds / 60))
}

resource "aws_cloudwatch_log_metric_filter" "expiry_runs" {
  count = local.expiry_runs_logged ? 1 : 0

  name           = "${var.name}-expiry-runs"
  log_group_name = aws_cloudwatch_log_group.this["scheduler"].name
  pattern        = "{ ($.msg = \"expiry run finished\") || ($.msg = \"expiry run ended with expired rows left*\") }"

  metric_transformation {
    name          = "ExpiryRunsCompleted"
    namespace     = "Triggers/${var.name}"
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

# Missing data is breaching: a scheduler that writes no log line at all runs no expiry either.
resource "aws_cloudwatch_metric_alarm" "expiry_overdue" {
  count = local.expiry_runs_logged ? 1 : 0

  alarm_name        = "${var.name}-expiry-overdue"
  alarm_description = "No expiry run completed for ${var.expiry_overdue_seconds}s: the scheduler is down, cannot reach Postgres or Redis, or every run fails. Acknowledged and dead events are not being deleted. The scheduler's /readyz names expiry; its /metrics has triggers_expiry_seconds_since_last_run."

  namespace   = "Triggers/${var.name}"
  metric_name = aws_cloudwatch_log_metric_filter.expiry_runs[0].metric_transformation[0].name
  statistic   = "Sum"
  period      = 60

  evaluation_periods  = local.expiry_overdue_periods
  datapoints_to_alarm = local.expiry_overdue_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Expiry, from the gauge the scheduler exports (triggers_expiry_seconds_since_last_run, shipped by
# the metrics collector): seconds since the last completed run, past expiry_overdue_seconds. It
# holds at every log level; missing data (no scheduler, no collector) is breaching, like above.
# Minimum: with several scheduler tasks, the freshest one's view (a run on any of them counts).
resource "aws_cloudwatch_metric_alarm" "expiry_gauge_overdue" {
  count = local.ship_metrics ? 1 : 0

  alarm_name        = "${var.name}-expiry-seconds-since-last-run"
  alarm_description = "The scheduler reports no completed expiry run for over ${var.expiry_overdue_seconds}s (triggers_expiry_seconds_since_last_run): every run fails, or Postgres or Redis is unreachable from it. Acknowledged and dead events are not being deleted. The scheduler's /readyz names expiry."

  namespace   = var.metrics_shipping.namespace
  metric_name = "triggers_expiry_seconds_since_last_run"
  dimensions  = { role = "scheduler" }
  statistic   = "Minimum"
  period      = 60

  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.expiry_overdue_seconds
  treat_missing_data  = "breaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}

# Retention by drop: a partition pair past its time that a live delivery (pending, leased, or
# within its retention) holds back waits (docs/scheduler.md#retention). Each run that finds one
# logs "partitions past their time wait for a live delivery" with oldestWaitingSeconds, the same
# value as the scheduler's triggers_partitions_waiting_oldest_seconds gauge. A pair held longer
# than partitions_waiting_alarm_seconds means a backlog nobody drains (or a retention too long for
# the disk): its storage is not given back until it goes. No line: nothing waits.
resource "aws_cloudwatch_log_metric_filter" "partitions_waiting" {
  count = local.expiry_runs_logged ? 1 : 0

  name           = "${var.name}-partitions-waiting"
  log_group_name = aws_cloudwatch_log_group.this["scheduler"].name
  pattern        = "{ $.msg = \"partitions past their time wait for a live delivery\" }"

  metric_transformation {
    name      = "PartitionsWaitingOldestSeconds"
    namespace = "Triggers/${var.name}"
    value     = "$.oldestWaitingSeconds"
    unit      = "Seconds"
  }
}

resource "aws_cloudwatch_metric_alarm" "partitions_waiting" {
  count = local.expiry_runs_logged ? 1 : 0

  alarm_name        = "${var.name}-partitions-waiting"
  alarm_description = "A partition of events/deliveries has waited more than ${var.partitions_waiting_alarm_seconds}s past its time for a live delivery (pending, leased, or within retention): its disk space is not given back. Drain or redrive the subscription's backlog, or set MAX_EVENT_AGE_SECONDS. The scheduler's /metrics has triggers_partitions_waiting and triggers_partitions_waiting_oldest_seconds."

  namespace   = "Triggers/${var.name}"
  metric_name = aws_cloudwatch_log_metric_filter.partitions_waiting[0].metric_transformation[0].name
  statistic   = "Maximum"
  period      = 300

  evaluation_periods  = 1
  datapoints_to_alarm = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.partitions_waiting_alarm_seconds
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions
  ok_actions    = local.alarm_actions

  tags = local.tags
}
