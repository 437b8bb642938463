################################################################################
# CloudWatch dashboard: ingest, queue, drain, database, Redis, errors, tasks, and (metrics_shipping)
# inbox leases, errors by code and the largest subscription backlogs
################################################################################

locals {
  dashboard_lb     = { LoadBalancer = aws_lb.this.arn_suffix }
  dashboard_target = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.api.arn_suffix }
  redis_node_ids   = [for i in range(var.redis_num_cache_clusters) : format("%s-%03d", aws_elasticache_replication_group.this.replication_group_id, i + 1)]

  # The service's own metrics (metrics-shipping.tf), in the collector's namespace; a Metrics Insights
  # query (SELECT … FROM SCHEMA(namespace, dimensions…)) where the series are only known at run time.
  dashboard_ns = var.metrics_shipping.namespace
  dashboard_service_widgets = [for w in [
    {
      title = "Inbox: events leased, acknowledged and nacked per minute"
      stat  = "Sum"
      metrics = [
        [local.dashboard_ns, "triggers_inbox_leased_total", "role", "api", { label = "leased (GET /inbox)" }],
        [local.dashboard_ns, "triggers_inbox_acks_total", "role", "api", { label = "acknowledged" }],
        [local.dashboard_ns, "triggers_inbox_nacks_total", "role", "api", { label = "nacked" }],
      ]
    },
    {
      # Only 4xx and 5xx are shipped (metrics-shipping.tf).
      title = "API errors by status code (per minute)"
      stat  = "Sum"
      metrics = [[{
        id         = "errors"
        label      = ""
        expression = "SELECT SUM(triggers_http_requests_total) FROM SCHEMA(\"${local.dashboard_ns}\", role, status) WHERE role = 'api' GROUP BY status ORDER BY SUM() DESC LIMIT 20"
      }]]
    },
    {
      title = "Backlog per subscription: the ${var.backlog_top_n} largest (events not yet acknowledged)"
      stat  = "Maximum"
      metrics = [[{
        id         = "backlog"
        label      = ""
        expression = "SELECT MAX(triggers_subscription_backlog) FROM SCHEMA(\"${local.dashboard_ns}\", tenant, subscription) GROUP BY tenant, subscription ORDER BY MAX() DESC LIMIT ${max(var.backlog_top_n, 1)}"
      }]]
    },
  ] : w if local.ship_metrics]

  # One widget: a titled time series of [namespace, metric, dimension name, value, …, options] rows.
  dashboard_widgets = concat(local.dashboard_platform_widgets, local.dashboard_service_widgets)

  dashboard_platform_widgets = [
    {
      title = "Ingest: requests per minute (ALB)"
      stat  = "Sum"
      metrics = [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", local.dashboard_lb.LoadBalancer, { label = "all requests" }],
        ["AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", "LoadBalancer", local.dashboard_target.LoadBalancer, "TargetGroup", local.dashboard_target.TargetGroup, { label = "2xx (POST /events answers 202)" }],
      ]
    },
    {
      title = "API response time at the ALB, seconds (mostly the 202 of POST /events)"
      stat  = "p50"
      metrics = [
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.dashboard_target.LoadBalancer, "TargetGroup", local.dashboard_target.TargetGroup, { stat = "p50", label = "p50" }],
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", local.dashboard_target.LoadBalancer, "TargetGroup", local.dashboard_target.TargetGroup, { stat = "p99", label = "p99" }],
      ]
    },
    {
      title = "Errors by status (ALB)"
      stat  = "Sum"
      metrics = [
        ["AWS/ApplicationELB", "HTTPCode_Target_4XX_Count", "LoadBalancer", local.dashboard_target.LoadBalancer, "TargetGroup", local.dashboard_target.TargetGroup, { label = "4xx from tasks" }],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", local.dashboard_target.LoadBalancer, "TargetGroup", local.dashboard_target.TargetGroup, { label = "5xx from tasks" }],
        ["AWS/ApplicationELB", "HTTPCode_ELB_4XX_Count", "LoadBalancer", local.dashboard_lb.LoadBalancer, { label = "4xx from the ALB" }],
        ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", local.dashboard_lb.LoadBalancer, { label = "5xx from the ALB (no healthy task)" }],
      ]
    },
    {
      title = "Queue depth (messages)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.main.name, { label = "events: visible" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.main.name, { label = "events: in flight" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name, { label = "dead letters" }],
      ]
    },
    {
      title = "Age of the oldest message, seconds"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.main.name, { label = "events" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.dlq.name, { label = "dead letters" }],
      ]
    },
    {
      title = "Drain rate: messages per minute"
      stat  = "Sum"
      metrics = [
        ["AWS/SQS", "NumberOfMessagesSent", "QueueName", aws_sqs_queue.main.name, { label = "sent by the API" }],
        ["AWS/SQS", "NumberOfMessagesDeleted", "QueueName", aws_sqs_queue.main.name, { label = "stored and deleted by workers" }],
      ]
    },
    {
      title = "Tasks: running and desired"
      stat  = "Average"
      metrics = flatten([for svc in sort(tolist(local.services)) : [
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", svc, { label = "${svc} running" }],
        ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", svc, { label = "${svc} desired" }],
      ]])
    },
    {
      title = "Database: CPU % and connections"
      stat  = "Average"
      metrics = concat(
        [
          concat(["AWS/RDS", "CPUUtilization"], flatten([for k, v in local.database_alarm_dimensions : [k, v]]), [{ label = "CPU %" }]),
          concat(["AWS/RDS", "DatabaseConnections"], flatten([for k, v in local.database_alarm_dimensions : [k, v]]), [{ label = "connections", yAxis = "right" }]),
        ],
        local.is_aurora ? [["AWS/RDS", "ACUUtilization", "DBClusterIdentifier", var.name, { label = "ACU % of maximum" }]] : [],
      )
    },
    {
      title = "Database: freeable memory, bytes"
      stat  = "Minimum"
      metrics = [
        concat(["AWS/RDS", "FreeableMemory"], flatten([for k, v in local.database_alarm_dimensions : [k, v]]), [{ label = "freeable memory" }]),
      ]
    },
    {
      title = "Redis: engine CPU % and memory % per node"
      stat  = "Maximum"
      metrics = flatten([for id in local.redis_node_ids : [
        ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", id, { label = "${id} engine CPU %" }],
        ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", id, { label = "${id} memory %" }],
      ]])
    },
    {
      title = "Redis: evictions and connections per node"
      stat  = "Sum"
      metrics = flatten([for id in local.redis_node_ids : [
        ["AWS/ElastiCache", "Evictions", "CacheClusterId", id, { label = "${id} evictions" }],
        ["AWS/ElastiCache", "CurrConnections", "CacheClusterId", id, { stat = "Maximum", label = "${id} connections", yAxis = "right" }],
      ]])
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  # Two widgets per row, 12 of the grid's 24 columns each.
  dashboard_body = jsonencode({
    widgets = [for i, w in local.dashboard_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = 60
        stat    = w.stat
        metrics = w.metrics
      }
    }]
  })
}
