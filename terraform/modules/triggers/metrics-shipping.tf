################################################################################
# The service's Prometheus metrics to CloudWatch: an AWS Distro for OpenTelemetry collector beside
# api, worker and scheduler scrapes the role's /metrics on 127.0.0.1:metrics_port (outside the
# request path: a scrape reads counters the process keeps anyway) and writes the kept series as
# CloudWatch embedded metric format (EMF) log events, which CloudWatch turns into metrics in the
# namespace var.metrics_shipping.namespace. No cloudwatch:PutMetricData: EMF goes through Logs.
################################################################################

locals {
  ship_metrics = var.metrics_shipping.enabled
  # Created below (with retention) before any task writes to it.
  metrics_log_group = "/ecs/${var.name}/metrics"

  # Series kept, by metric: the dimensions CloudWatch gets. Every other Prometheus series (default
  # process metrics, histograms) is dropped at the scrape (metric_relabel_configs) and never
  # reaches CloudWatch, nor are requests answered 1xx-3xx. Labels not listed (route, method, the
  # task) are summed away, so the bound on CloudWatch metrics is: the error statuses the API
  # answers (~10), one per other metric and role, and BACKLOG_TOP_N backlog series at a time (one
  # more for each subscription that enters the top N). Every api task exports the same backlog
  # values: the dashboard reads them with MAX.
  shipped_metrics = {
    triggers_http_requests_total           = [["role", "status"]]
    triggers_inbox_leased_total            = [["role"]]
    triggers_inbox_acks_total              = [["role"]]
    triggers_inbox_nacks_total             = [["role"]]
    triggers_events_accepted_total         = [["role"]]
    triggers_enqueue_failures_total        = [["role"]]
    triggers_worker_rows_inserted_total    = [["role"]]
    triggers_expiry_seconds_since_last_run = [["role"]]
    triggers_subscription_backlog          = [["tenant", "subscription"]]
  }

  # The collector's configuration, per role, inline in the task definition (AOT_CONFIG_CONTENT),
  # so the container definitions stay known at plan time. No "$" in it: the collector expands
  # ${VAR} references in its configuration.
  collector_config = {
    for svc in local.services : svc => yamlencode({
      receivers = {
        prometheus = {
          config = {
            scrape_configs = [{
              job_name        = svc
              scrape_interval = "${var.metrics_shipping.interval_seconds}s"
              scrape_timeout  = "5s"
              static_configs = [{
                targets = ["127.0.0.1:${var.metrics_port}"]
                labels  = { role = svc }
              }]
              metric_relabel_configs = [
                {
                  source_labels = ["__name__"]
                  regex         = join("|", keys(local.shipped_metrics))
                  action        = "keep"
                },
                # Requests by status: only errors (4xx, 5xx) go on; ingest volume is the ALB's RequestCount.
                {
                  source_labels = ["__name__", "status"]
                  regex         = "triggers_http_requests_total;[123].."
                  action        = "drop"
                },
              ]
            }]
          }
        }
      }
      exporters = {
        awsemf = {
          namespace                        = var.metrics_shipping.namespace
          region                           = local.region
          log_group_name                   = local.metrics_log_group
          log_stream_name                  = svc
          dimension_rollup_option          = "NoDimensionRollup"
          resource_to_telemetry_conversion = { enabled = false }
          metric_declarations = [for name, dims in local.shipped_metrics : {
            dimensions = dims
            # Unanchored (no "$" in the configuration): the scrape keeps only these exact names
            # (Prometheus anchors the relabel regex) and none is a part of another.
            metric_name_selectors = [name]
          }]
        }
      }
      service = {
        pipelines = {
          metrics = { receivers = ["prometheus"], exporters = ["awsemf"] }
        }
      }
    })
  }

  collector_containers = {
    for svc in local.services : svc => {
      name      = "metrics-collector"
      image     = var.metrics_shipping.image
      essential = false # a collector that stops leaves the role running; only the metrics pause
      # A soft reservation inside the task's memory (the role's container has no hard limit).
      memoryReservation      = var.metrics_shipping.memory
      readonlyRootFilesystem = var.readonly_root_filesystem
      environment            = [{ name = "AOT_CONFIG_CONTENT", value = local.collector_config[svc] }]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this[svc].name
          awslogs-region        = local.region
          awslogs-stream-prefix = "metrics-collector"
        }
      }
    }
  }
}

# The EMF log events (the metrics' raw form), kept briefly: CloudWatch has extracted the metrics on arrival.
resource "aws_cloudwatch_log_group" "metrics" {
  count = local.ship_metrics ? 1 : 0

  name              = local.metrics_log_group
  retention_in_days = var.metrics_shipping.log_retention_days

  tags = local.tags
}

# api, worker, scheduler task roles: write EMF events to that one group (the collector runs with
# the task's role). The group exists, so no logs:CreateLogGroup.
data "aws_iam_policy_document" "metrics_shipping" {
  count = local.ship_metrics ? 1 : 0

  statement {
    sid       = "EmbeddedMetrics"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.metrics[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "metrics_shipping" {
  for_each = local.ship_metrics ? local.services : toset([])

  name   = "embedded-metrics"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.metrics_shipping[0].json
}
