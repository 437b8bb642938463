################################################################################
# ECS Fargate: one image, four task definitions (api, worker, scheduler, migrate)
################################################################################

resource "aws_ecs_cluster" "this" {
  name = var.name

  # RunningTaskCount (ECS/ContainerInsights) is the denominator of the worker's backlog-per-task scaling.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  # ECS Exec sessions (var.enable_execute_command, used to create the first API key) are not
  # recorded: what `keys create` prints reaches the operator's terminal only, never CloudWatch or S3.
  configuration {
    execute_command_configuration {
      logging = "NONE"
    }
  }

  tags = local.tags
}

# Lets a service use Fargate Spot (worker.fargate_spot); services without a strategy keep their launch type.
resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.commands

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days

  tags = local.tags
}

locals {
  common_environment = {
    AWS_REGION = local.region
    LOG_LEVEL  = var.log_level
    # Every process gets the real queue URL: the long-running roles refuse to start without one
    # (scheduler and migrate make no SQS call; their roles allow none). NODE_ENV=production is the
    # image's.
    SQS_QUEUE_URL = local.queue_url
  }

  # api, worker, scheduler: triggers_app through RDS IAM authentication (DATABASE_URL among the
  # secrets below); listen on all interfaces and serve /healthz, /readyz, /metrics on METRICS_PORT.
  service_environment = {
    DATABASE_IAM_AUTH = "true"
    HOST              = "0.0.0.0"
    METRICS_PORT      = tostring(var.metrics_port)
  }

  # Per process: the module's values win over var.environment, so a typo there cannot
  # point a process at another queue or database.
  environment = {
    api = merge(var.environment, local.common_environment, local.service_environment, {
      PORT = tostring(local.api_port)
      # Behind the ALB every connection comes from the load balancer: the client address (for the
      # failed-authentication throttle and the logs) is the last X-Forwarded-For hop the ALB appends.
      HTTP_TRUST_PROXY = "true"
      BACKLOG_TOP_N    = tostring(var.backlog_top_n)
    })
    worker = merge(var.environment, local.common_environment, local.service_environment, {
      SQS_DLQ_URL               = local.dlq_url
      SQS_MAX_RECEIVE_COUNT     = tostring(var.sqs_max_receive_count)
      WORKER_VISIBILITY_SECONDS = tostring(var.sqs_visibility_timeout_seconds)
      WORKER_RECEIVERS          = tostring(var.worker.receivers)
    })
    scheduler = merge(var.environment, local.common_environment, local.service_environment, {
      EXPIRY_OVERDUE_SECONDS = tostring(var.expiry_overdue_seconds)
    })
    migrate = merge(var.environment, local.common_environment, {})
  }

  # Values AWS only knows after apply (database endpoint, RDS-managed secret ARN, Redis endpoint
  # and token) reach the tasks as SSM parameters whose ARNs are known at plan time: ECS reads them
  # at task start with the execution role. So every container definition is known in the plan.
  # The database password is not among them: see DATABASE_IAM_AUTH / DATABASE_PASSWORD_SECRET_ARN.
  runtime_parameters = {
    # api, worker, scheduler: postgresql://triggers_app@<endpoint>:5432/<db>?sslmode=verify-full
    "app-database-url" = local.app_database_url
    # migrate: the master user, no password (the process reads it from the secret below)
    "database-url" = local.database_url
    # migrate: the RDS-managed master secret, read by the process itself (and again after a
    # failed login) with its task role, so RDS's rotation never bites.
    "database-password-secret-arn" = local.database_secret_arn
  }

  parameter_arn_prefix = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${var.name}"
  parameter_arns = {
    for k in concat(keys(local.runtime_parameters), ["redis-url"]) : k => "${local.parameter_arn_prefix}/${k}"
  }

  secrets = {
    api = [
      { name = "DATABASE_URL", valueFrom = local.parameter_arns["app-database-url"] },
      { name = "REDIS_URL", valueFrom = local.parameter_arns["redis-url"] },
    ]
    worker = [
      { name = "DATABASE_URL", valueFrom = local.parameter_arns["app-database-url"] },
      { name = "REDIS_URL", valueFrom = local.parameter_arns["redis-url"] },
    ]
    scheduler = [
      { name = "DATABASE_URL", valueFrom = local.parameter_arns["app-database-url"] },
      { name = "REDIS_URL", valueFrom = local.parameter_arns["redis-url"] },
    ]
    migrate = [
      { name = "DATABASE_URL", valueFrom = local.parameter_arns["database-url"] },
      { name = "DATABASE_PASSWORD_SECRET_ARN", valueFrom = local.parameter_arns["database-password-secret-arn"] },
    ]
  }

  ports = {
    api       = [local.api_port, var.metrics_port]
    worker    = [var.metrics_port]
    scheduler = [var.metrics_port]
    migrate   = []
  }

  sizes = {
    api       = { cpu = var.api.cpu, memory = var.api.memory }
    worker    = { cpu = var.worker.cpu, memory = var.worker.memory }
    scheduler = { cpu = var.scheduler.cpu, memory = var.scheduler.memory }
    migrate   = { cpu = var.migrate.cpu, memory = var.migrate.memory }
  }

  # Seconds between SIGTERM and SIGKILL: the worker finishes (and deletes) its in-flight batch.
  stop_timeouts = {
    api       = 30
    worker    = var.worker.stop_timeout_seconds
    scheduler = 30
    migrate   = 120
  }

  # Liveness only: `healthcheck` GETs http://127.0.0.1:$METRICS_PORT/healthz (2 s deadline), the
  # same command as the image's HEALTHCHECK. Readiness (/readyz: Postgres, SQS, Redis) is not a
  # reason to kill a task; one dependency blip would otherwise recycle every task at once.
  health_checks = {
    for svc in local.services : svc => {
      command     = ["CMD", "node", var.cli_script, "healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
  }

  # The role's container, then (api, worker, scheduler, when metrics_shipping.enabled) the metrics
  # collector of metrics-shipping.tf.
  container_definitions = {
    for svc, command in local.commands : svc => concat([merge(
      {
        name        = svc
        image       = var.image
        essential   = true
        command     = command
        stopTimeout = local.stop_timeouts[svc]
        # The roles write no file (logs go to stdout); `start` (PGlite) is not deployed. ECS Exec's
        # agent writes inside the container, so api's is writable while enable_execute_command is on.
        readonlyRootFilesystem = var.readonly_root_filesystem && !(svc == "api" && var.enable_execute_command)
        environment            = [for k in sort(keys(local.environment[svc])) : { name = k, value = local.environment[svc][k] }]
        secrets                = local.secrets[svc]
        portMappings = [for p in local.ports[svc] : {
          containerPort = p
          protocol      = "tcp"
        }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.this[svc].name
            awslogs-region        = local.region
            awslogs-stream-prefix = svc
          }
        }
      },
      # (A filtered for, not `cond ? {…} : {}`: both branches of a conditional need one type.)
      { for k, check in local.health_checks : "healthCheck" => check if k == svc },
    )], [for k, collector in local.collector_containers : collector if k == svc && local.ship_metrics])
  }
}

resource "aws_ssm_parameter" "runtime" {
  for_each = local.runtime_parameters

  name        = "/${var.name}/${each.key}"
  description = "${var.name}: ${each.key}, read by ECS at task start (no credentials)"
  type        = "String"
  value       = each.value

  tags = local.tags
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.commands

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(local.sizes[each.key].cpu)
  memory                   = tostring(local.sizes[each.key].memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = jsonencode(local.container_definitions[each.key])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = local.tags
}

################################################################################
# Services
################################################################################

# Stands for the network path the tasks need at start (e.g. the NAT routes of the private
# subnets): the services depend on it, so they are created after whatever ids are passed.
resource "terraform_data" "network_ready" {
  input = concat(var.network_dependency_ids, [for e in aws_vpc_endpoint.interface : e.id], aws_vpc_endpoint.s3[*].id)
}

resource "aws_ecs_service" "api" {
  name            = "api"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["api"].arn
  desired_count   = var.api.min_count
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.api.id, aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = local.api_port
  }

  health_check_grace_period_seconds  = 30
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # Apply fails if the tasks do not become healthy (crash loop, rollback) instead of reporting success.
  wait_for_steady_state = var.wait_for_steady_state

  # ECS Exec into a running api task (first API key, see README); off unless asked for.
  enable_execute_command = var.enable_execute_command

  tags = local.tags

  # No task may start before what it needs at start exists: the secrets it reads, the permissions
  # it uses, the database and Redis it connects to, the network path to AWS APIs, and the schema
  # of its image (terraform_data.migrate, on every new migrate task definition).
  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.database_connect,
    aws_iam_role_policy.api_task,
    aws_ssm_parameter.redis_url,
    aws_ssm_parameter.runtime,
    aws_sqs_queue.main,
    aws_elasticache_replication_group.this,
    aws_db_instance.this,
    aws_rds_cluster_instance.this,
    terraform_data.network_ready,
    terraform_data.migrate,
    aws_lb_listener.https,
  ]

  lifecycle {
    # Owned by autoscaling after creation.
    ignore_changes = [desired_count]
  }
}

resource "aws_ecs_service" "worker" {
  name            = "worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["worker"].arn
  desired_count   = var.worker.min_count
  launch_type     = var.worker.fargate_spot ? null : "FARGATE"

  # worker.fargate_spot: the first task on regular Fargate, every further one on Spot.
  dynamic "capacity_provider_strategy" {
    for_each = var.worker.fargate_spot ? [{ provider = "FARGATE", base = 1, weight = 0 }, { provider = "FARGATE_SPOT", base = 0, weight = 1 }] : []
    content {
      capacity_provider = capacity_provider_strategy.value.provider
      base              = capacity_provider_strategy.value.base
      weight            = capacity_provider_strategy.value.weight
    }
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # Apply fails if the tasks do not become healthy (crash loop, rollback) instead of reporting success.
  wait_for_steady_state = var.wait_for_steady_state

  tags = local.tags

  # No task may start before what it needs at start exists: the secrets it reads, the permissions
  # it uses, the database and Redis it connects to, the network path to AWS APIs, and the schema
  # of its image (terraform_data.migrate, on every new migrate task definition).
  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.database_connect,
    aws_iam_role_policy.worker_task,
    aws_ssm_parameter.redis_url,
    aws_ssm_parameter.runtime,
    aws_sqs_queue.main,
    aws_sqs_queue.dlq,
    aws_ecs_cluster_capacity_providers.this,
    aws_elasticache_replication_group.this,
    aws_db_instance.this,
    aws_rds_cluster_instance.this,
    terraform_data.network_ready,
    terraform_data.migrate,
  ]

  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_ecs_service" "scheduler" {
  name            = "scheduler"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["scheduler"].arn
  desired_count   = var.scheduler.desired_count
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # Apply fails if the tasks do not become healthy (crash loop, rollback) instead of reporting success.
  wait_for_steady_state = var.wait_for_steady_state

  tags = local.tags

  # No task may start before what it needs at start exists: the secrets it reads, the permissions
  # it uses, the database and Redis it connects to, the network path to AWS APIs, and the schema
  # of its image (terraform_data.migrate, on every new migrate task definition).
  depends_on = [
    aws_iam_role_policy.execution,
    aws_iam_role_policy.database_connect,
    aws_ssm_parameter.redis_url,
    aws_ssm_parameter.runtime,
    aws_sqs_queue.main,
    aws_elasticache_replication_group.this,
    aws_db_instance.this,
    aws_rds_cluster_instance.this,
    terraform_data.network_ready,
    terraform_data.migrate,
  ]
}

################################################################################
# Autoscaling
################################################################################

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.api.min_count
  max_capacity       = var.api.max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.api.cpu_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "api_requests" {
  name               = "${var.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.api.requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker.min_count
  max_capacity       = var.worker.max_count
}

# Backlog per task: visible messages / running workers, kept near worker.backlog_per_task.
# CPU would be the wrong signal: a worker waiting on Postgres is idle while the queue grows.
resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${var.name}-worker-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker.backlog_per_task
    scale_in_cooldown  = var.worker.scale_in_cooldown
    scale_out_cooldown = var.worker.scale_out_cooldown

    customized_metric_specification {
      metrics {
        id          = "visible"
        label       = "Visible messages in the events queue"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.main.name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_task"
        label       = "Visible messages per running worker"
        expression  = "visible / tasks"
        return_data = true
      }
    }
  }
}
