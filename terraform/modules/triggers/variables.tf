################################################################################
# General
################################################################################

variable "name" {
  type        = string
  description = "Name prefix of every resource (queues, database, cluster, services). Lowercase letters, digits and single hyphens; it is the RDS and ElastiCache identifier as is."
  default     = "triggers"

  # RDS and ElastiCache identifiers: a letter first, no two hyphens in a row, no hyphen last.
  # 24 characters: "<name>-api" must fit the 32 characters of a load balancer or target group name.
  validation {
    condition     = length(var.name) >= 2 && length(var.name) <= 24 && can(regex("^[a-z](-?[a-z0-9])*$", var.name))
    error_message = "name must be 2-24 characters of lowercase letters, digits and hyphens, start with a letter, and have no \"--\" and no trailing \"-\" (RDS and ElastiCache refuse those)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that supports them."
  default     = {}
}

################################################################################
# Network (the module does not create the VPC)
################################################################################

variable "vpc_id" {
  type        = string
  description = "ID of the VPC everything is placed in."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets (at least two AZs) for the ECS tasks. They need a route to AWS APIs (NAT gateway or VPC endpoints for SQS, SSM, Secrets Manager, ECR, CloudWatch Logs)."

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Give at least two private subnets in different availability zones."
  }
}

variable "database_subnet_ids" {
  type        = list(string)
  description = "Private subnets for the database and Redis. Empty means private_subnet_ids."
  default     = []
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Subnets of the load balancer: public subnets for an internet-facing ALB, private ones when alb_internal = true."

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An ALB needs subnets in at least two availability zones."
  }
}

variable "alb_internal" {
  type        = bool
  description = "Make the load balancer internal (reachable only inside the VPC) instead of internet-facing."
  default     = false
}

variable "alb_ingress_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks allowed to reach the load balancer on ports 80 and 443."
  default     = ["0.0.0.0/0"]
}

variable "vpc_endpoints" {
  type = object({
    enabled         = optional(bool, false)
    route_table_ids = optional(list(string), [])
  })
  description = "Create interface endpoints (SQS, SSM, Secrets Manager, ECR api and dkr, CloudWatch Logs) in private_subnet_ids and an S3 gateway endpoint (ECR layers) on route_table_ids, so the tasks need no NAT gateway for AWS APIs. Each interface endpoint costs per AZ-hour. Add their ids (endpoint_ids output) to network_dependency_ids only if you pass them from outside; the module's own are waited for already."
  default     = {}
}

variable "waf_web_acl_arn" {
  type        = string
  description = "ARN of a regional WAFv2 web ACL to associate with the load balancer. Null associates none."
  default     = null
}

variable "alb_access_logs" {
  type = object({
    bucket = string
    prefix = optional(string, "")
  })
  description = "S3 bucket (and key prefix) for the load balancer's access logs; the bucket policy must let the region's ELB account write. Null turns access logs off."
  default     = null
}

variable "metrics_ingress_security_group_ids" {
  type        = list(string)
  description = "Security groups (e.g. a Prometheus scraper) allowed to reach the tasks' /metrics port (metrics_port)."
  default     = []
}

################################################################################
# HTTPS
################################################################################

variable "certificate_arn" {
  type        = string
  description = "ARN of the ACM certificate served by the HTTPS listener."
}

variable "ssl_policy" {
  type        = string
  description = "TLS policy of the HTTPS listener."
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "domain_name" {
  type        = string
  description = "Public host name of the API (e.g. triggers.example.com). Used for api_url and, with route53_zone_id, for an alias record. Null means the ALB DNS name."
  default     = null
}

variable "route53_zone_id" {
  type        = string
  description = "Route 53 hosted zone in which to create an alias record domain_name -> ALB. Null creates no record."
  default     = null
}

################################################################################
# Queue
################################################################################

variable "sqs_visibility_timeout_seconds" {
  type        = number
  description = "Visibility timeout of the main queue, seconds. Must cover a worker's receive -> insert -> delete of one batch; it is also passed to the worker as WORKER_VISIBILITY_SECONDS so both agree (app default 60). Too short redelivers messages still being stored (harmless, inserts are idempotent, but wasteful); too long delays the retry of a batch whose worker died."
  default     = 60

  validation {
    condition     = var.sqs_visibility_timeout_seconds >= 1 && var.sqs_visibility_timeout_seconds <= 43200
    error_message = "The SQS visibility timeout is 1 to 43200 seconds."
  }
}

variable "sqs_max_receive_count" {
  type        = number
  description = "Receives of a message before SQS moves it to the dead-letter queue."
  default     = 5

  validation {
    condition     = var.sqs_max_receive_count >= 1 && var.sqs_max_receive_count <= 1000
    error_message = "maxReceiveCount is 1 to 1000."
  }
}

variable "sqs_message_retention_seconds" {
  type        = number
  description = "How long the main queue keeps a message, seconds (default 4 days)."
  default     = 345600
}

variable "sqs_dlq_message_retention_seconds" {
  type        = number
  description = "How long the dead-letter queue keeps a message, seconds (default 14 days, the SQS maximum). Must exceed the main queue's retention, since a message's age is kept when it moves."
  default     = 1209600
}

################################################################################
# Database
################################################################################

variable "database_engine" {
  type        = string
  description = "\"rds\" for RDS for PostgreSQL (one instance, optionally Multi-AZ) or \"aurora-serverless\" for Aurora PostgreSQL Serverless v2 (which can also expose the RDS Data API)."
  default     = "rds"

  validation {
    condition     = contains(["rds", "aurora-serverless"], var.database_engine)
    error_message = "database_engine must be \"rds\" or \"aurora-serverless\"."
  }
}

variable "database_name" {
  type        = string
  description = "Name of the application database."
  default     = "triggers"
}

variable "database_username" {
  type        = string
  description = "Master user name. Its password is generated and rotated by RDS in Secrets Manager (manage_master_user_password)."
  default     = "triggers"
}

variable "database_master_secret_kms_key_id" {
  type        = string
  description = "KMS key encrypting the RDS-managed master secret. Null uses the account's aws/secretsmanager key."
  default     = null
}

variable "database_kms_key_id" {
  type        = string
  description = "KMS key ARN for storage encryption. Null uses the account's aws/rds key (storage is encrypted either way)."
  default     = null
}

variable "rds_engine_version" {
  type        = string
  description = "PostgreSQL version for database_engine = \"rds\". A major version (\"16\") takes the newest minor; minor upgrades are applied automatically in the maintenance window."
  default     = "16"
}

variable "rds_instance_class" {
  type        = string
  description = "Instance class for database_engine = \"rds\"."
  default     = "db.t4g.medium"
}

variable "rds_allocated_storage" {
  type        = number
  description = "Initial gp3 storage, GiB (database_engine = \"rds\")."
  default     = 20
}

variable "rds_max_allocated_storage" {
  type        = number
  description = "Storage autoscaling ceiling, GiB (database_engine = \"rds\")."
  default     = 200
}

variable "rds_multi_az" {
  type        = bool
  description = "Run a synchronous standby in a second AZ (database_engine = \"rds\")."
  default     = true
}

variable "aurora_engine_version" {
  type        = string
  description = "Aurora PostgreSQL version for database_engine = \"aurora-serverless\" (full version; Data API needs 13.11, 14.8, 15.3, 16.1 or later)."
  default     = "16.6"
}

variable "aurora_instance_count" {
  type        = number
  description = "Serverless v2 instances in the Aurora cluster (1 writer + readers for failover)."
  default     = 2
}

variable "aurora_min_capacity" {
  type        = number
  description = "Minimum Aurora Serverless v2 capacity, ACUs (0.5 steps). 0 lets the instances pause when no connection is open (Aurora PostgreSQL 13.15, 14.12, 15.7, 16.3 or later; the first connection after a pause waits about 15 s). The long-running roles keep connections open, so only a deployment scaled to zero tasks pauses."
  default     = 0.5

  validation {
    condition     = var.aurora_min_capacity >= 0 && var.aurora_min_capacity <= 256 && floor(var.aurora_min_capacity * 2) == var.aurora_min_capacity * 2
    error_message = "aurora_min_capacity is 0 to 256 ACUs in 0.5 steps."
  }
}

variable "aurora_max_capacity" {
  type        = number
  description = "Maximum Aurora Serverless v2 capacity, ACUs (at least aurora_min_capacity)."
  default     = 8

  validation {
    condition     = var.aurora_max_capacity >= 1 && var.aurora_max_capacity <= 256 && floor(var.aurora_max_capacity * 2) == var.aurora_max_capacity * 2
    error_message = "aurora_max_capacity is 1 to 256 ACUs in 0.5 steps."
  }
}

variable "enable_data_api" {
  type        = bool
  description = "Enable the RDS Data API (HTTP endpoint) on the Aurora cluster, so migrations can run from outside the VPC with only IAM credentials (database_engine = \"aurora-serverless\" only)."
  default     = false
}

variable "database_backup_retention_days" {
  type        = number
  description = "Days of automated backups (point-in-time recovery window)."
  default     = 7

  validation {
    condition     = var.database_backup_retention_days >= 1 && var.database_backup_retention_days <= 35
    error_message = "Backup retention is 1 to 35 days (0 would disable backups)."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the database and the load balancer from deletion. Set false and apply before `terraform destroy`."
  default     = true
}

variable "database_ssl_query" {
  type        = string
  description = "Query string appended to both DATABASE_URLs. The default verifies the server certificate and host name; the image carries the Amazon RDS CA bundle, which the service trusts for sslmode=verify-full. RDS for PostgreSQL 15+ and Aurora require TLS, so never use sslmode=disable here."
  default     = "sslmode=verify-full"
}

################################################################################
# Redis
################################################################################

variable "redis_engine_version" {
  type        = string
  description = "ElastiCache Redis OSS version (BullMQ needs 6.2 or later)."
  default     = "7.1"
}

variable "redis_parameter_group_family" {
  type        = string
  description = "Parameter group family matching redis_engine_version."
  default     = "redis7"
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
  default     = "cache.t4g.small"
}

variable "redis_auth_token_update_strategy" {
  type        = string
  description = "How ElastiCache applies a changed auth token: ROTATE (old and new both valid, the safe default while tasks still hold the old REDIS_URL) or SET (only the new one; use after the services have been redeployed)."
  default     = "ROTATE"

  validation {
    condition     = contains(["ROTATE", "SET"], var.redis_auth_token_update_strategy)
    error_message = "redis_auth_token_update_strategy must be ROTATE or SET."
  }
}

variable "redis_num_cache_clusters" {
  type        = number
  description = "Nodes in the replication group (1 primary + replicas). 2 or more enables automatic failover and Multi-AZ."
  default     = 2
}

variable "redis_snapshot_retention_days" {
  type        = number
  description = "Days of Redis snapshots (0 disables them; BullMQ schedules are recreated at start, so they are a convenience)."
  default     = 1
}

################################################################################
# Compute
################################################################################

variable "image" {
  type        = string
  description = "Container image (repository:tag or @digest) of the service; api, worker, scheduler and migrate all run it with different commands."
}

variable "cli_script" {
  type        = string
  description = "Path, relative to the image's working directory, of the built `triggers` CLI. The image's ENTRYPOINT already runs it (task commands are only the sub-command); the container health checks run `node <cli_script> healthcheck`."
  default     = "dist/src/cli/main.js"
}

variable "enable_execute_command" {
  type        = bool
  description = "Allow ECS Exec into the api tasks (sessions are not logged). Turn it on to create the first API key without it reaching any log (see README), then off again."
  default     = false
}

variable "run_migrations" {
  type        = bool
  description = "Run the migrate task (and require exit code 0) during apply, before the services are created or rolled onto a new image. Needs bash and the AWS CLI v2 where Terraform runs, with credentials allowing ecs:RunTask, ecs:DescribeTasks and iam:PassRole on the task roles. false: run migrations yourself before the services need them."
  default     = true
}

variable "migration_timeout_seconds" {
  type        = number
  description = "How long apply waits for the migrate task to stop, seconds. When exceeded the apply fails and the task keeps running."
  default     = 1800

  validation {
    condition     = var.migration_timeout_seconds >= 60
    error_message = "migration_timeout_seconds must be at least 60."
  }
}

variable "wait_for_steady_state" {
  type        = bool
  description = "Make apply wait until every service has its desired count of healthy tasks on the new task definition, and fail if it does not within the provider's timeout (20 minutes), e.g. when tasks crash-loop and the circuit breaker rolls back."
  default     = true
}

variable "network_dependency_ids" {
  type        = list(string)
  description = "Ids of what the tasks' network path to AWS APIs is made of (e.g. the NAT routes or VPC endpoints of private_subnet_ids). The services are created only after them, so the first tasks can reach ECR, Secrets Manager and SQS."
  default     = []
}

variable "image_repository_arn" {
  type        = string
  description = "ARN of the ECR repository the execution role may pull from. Null derives it from image when image is an ECR URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>, any account or region); an image outside ECR gets no ECR pull permission."
  default     = null
}

variable "cpu_architecture" {
  type        = string
  description = "CPU architecture of the image: X86_64 or ARM64."
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "readonly_root_filesystem" {
  type        = bool
  description = "Run every container with a read-only root filesystem (the production roles write no file; only `start`, the all-in-one development command, does). The api container is writable while enable_execute_command is on: ECS Exec's agent writes inside it."
  default     = true
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every process (pino level)."
  default     = "info"

  validation {
    condition     = contains(["fatal", "error", "warn", "info", "debug", "trace", "silent"], var.log_level)
    error_message = "log_level must be a pino level."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the tasks' logs and the database's exported logs (0 keeps them forever)."
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 0 (never expire), 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "metrics_port" {
  type        = number
  description = "Port of the /metrics endpoint of worker and scheduler (METRICS_PORT)."
  default     = 9464
}

variable "metrics_shipping" {
  type = object({
    enabled            = optional(bool, true)
    image              = optional(string, "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0")
    namespace          = optional(string, "Triggers")
    interval_seconds   = optional(number, 60)
    memory             = optional(number, 64)
    log_retention_days = optional(number, 1)
  })
  description = "A metrics collector (AWS Distro for OpenTelemetry) beside api, worker and scheduler that scrapes the role's /metrics and writes the series the dashboard needs to CloudWatch (namespace) as embedded metric format: image (pin a digest in production; public.ecr.aws needs the NAT path), scrape interval, memory reservation in MiB, retention of the raw EMF log events."
  default     = {}

  validation {
    condition     = var.metrics_shipping.interval_seconds >= 10 && var.metrics_shipping.interval_seconds <= 300
    error_message = "metrics_shipping.interval_seconds must be between 10 and 300."
  }

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90], var.metrics_shipping.log_retention_days)
    error_message = "metrics_shipping.log_retention_days must be 1, 3, 5, 7, 14, 30, 60 or 90."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_shipping.namespace)) && !startswith(var.metrics_shipping.namespace, "AWS/")
    error_message = "metrics_shipping.namespace must be 1-255 characters of letters, digits and . _ / # : - and not start with AWS/."
  }
}

variable "backlog_top_n" {
  type        = number
  description = "Subscriptions with the largest backlog the api exports as triggers_subscription_backlog (BACKLOG_TOP_N); 0 turns the query off."
  default     = 10

  validation {
    condition     = var.backlog_top_n >= 0 && var.backlog_top_n <= 50 && floor(var.backlog_top_n) == var.backlog_top_n
    error_message = "backlog_top_n must be a whole number from 0 to 50."
  }
}

variable "environment" {
  type        = map(string)
  description = "Extra plain environment variables for every process (e.g. RATE_LIMIT_PER_MINUTE, MAX_DELIVERIES). They cannot override the ones the module sets."
  default     = {}
}

variable "api" {
  type = object({
    cpu                  = optional(number, 512)
    memory               = optional(number, 1024)
    min_count            = optional(number, 2)
    max_count            = optional(number, 10)
    cpu_target           = optional(number, 60)
    requests_per_target  = optional(number, 2000)
    health_check_path    = optional(string, "/healthz")
    deregistration_delay = optional(number, 30)
  })
  description = "api service: task size (Fargate cpu units / MiB), autoscaling bounds, target CPU %, target ALB requests per task per minute, health check path and deregistration delay (s)."
  default     = {}

  # Fargate's task sizes: per cpu value, the memory values it accepts (MiB).
  validation {
    condition = contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = range(1024, 4097, 1024)
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(var.api.cpu), []), var.api.memory)
    error_message = "api.cpu and api.memory must be a Fargate task size: cpu 256 (memory 512, 1024, 2048), 512 (1024-4096), 1024 (2048-8192), 2048 (4096-16384), 4096 (8192-30720) in 1024 steps; 8192 (16384-61440, 4096 steps), 16384 (32768-122880, 8192 steps)."
  }

  validation {
    condition     = var.api.min_count >= 0 && var.api.min_count <= var.api.max_count
    error_message = "api.min_count must be at least 0 and at most api.max_count."
  }
}

variable "worker" {
  type = object({
    cpu                  = optional(number, 512)
    memory               = optional(number, 1024)
    min_count            = optional(number, 1)
    max_count            = optional(number, 20)
    backlog_per_task     = optional(number, 2000)
    scale_in_cooldown    = optional(number, 300)
    scale_out_cooldown   = optional(number, 60)
    receivers            = optional(number, 4)
    stop_timeout_seconds = optional(number, 60)
    fargate_spot         = optional(bool, false)
  })
  description = "worker service: task size, autoscaling bounds, target visible messages per running task (acceptable backlog = drain rate per task x tolerated delay), cooldowns (s), WORKER_RECEIVERS, the stop timeout (s) that lets a task finish its batch, and fargate_spot: run every worker task beyond the first on Fargate Spot (about 70% cheaper; an interrupted task gets SIGTERM two minutes ahead, more than the stop timeout, and SQS redelivers what it had not deleted). Toggling it replaces the worker service."
  default     = {}

  # Fargate's task sizes: per cpu value, the memory values it accepts (MiB).
  validation {
    condition = contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = range(1024, 4097, 1024)
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(var.worker.cpu), []), var.worker.memory)
    error_message = "worker.cpu and worker.memory must be a Fargate task size: cpu 256 (memory 512, 1024, 2048), 512 (1024-4096), 1024 (2048-8192), 2048 (4096-16384), 4096 (8192-30720) in 1024 steps; 8192 (16384-61440, 4096 steps), 16384 (32768-122880, 8192 steps)."
  }

  validation {
    condition     = var.worker.min_count >= 0 && var.worker.min_count <= var.worker.max_count
    error_message = "worker.min_count must be at least 0 and at most worker.max_count."
  }
}

variable "scheduler" {
  type = object({
    cpu           = optional(number, 256)
    memory        = optional(number, 512)
    desired_count = optional(number, 1)
  })
  description = "scheduler service: task size and count (BullMQ de-duplicates repeatable jobs, so 2 only adds availability)."
  default     = {}

  # Fargate's task sizes: per cpu value, the memory values it accepts (MiB).
  validation {
    condition = contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = range(1024, 4097, 1024)
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(var.scheduler.cpu), []), var.scheduler.memory)
    error_message = "scheduler.cpu and scheduler.memory must be a Fargate task size: cpu 256 (memory 512, 1024, 2048), 512 (1024-4096), 1024 (2048-8192), 2048 (4096-16384), 4096 (8192-30720) in 1024 steps; 8192 (16384-61440, 4096 steps), 16384 (32768-122880, 8192 steps)."
  }
}

variable "migrate" {
  type = object({
    cpu    = optional(number, 256)
    memory = optional(number, 512)
  })
  description = "Size of the one-off migrate task (also used for `keys create`)."
  default     = {}

  # Fargate's task sizes: per cpu value, the memory values it accepts (MiB).
  validation {
    condition = contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = range(1024, 4097, 1024)
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(var.migrate.cpu), []), var.migrate.memory)
    error_message = "migrate.cpu and migrate.memory must be a Fargate task size: cpu 256 (memory 512, 1024, 2048), 512 (1024-4096), 1024 (2048-8192), 2048 (4096-16384), 4096 (8192-30720) in 1024 steps; 8192 (16384-61440, 4096 steps), 16384 (32768-122880, 8192 steps)."
  }
}

################################################################################
# Alarms
################################################################################

variable "create_alarm_topic" {
  type        = bool
  description = "Create an encrypted SNS topic that every alarm notifies (subscribe to it yourself)."
  default     = true
}

variable "alarm_actions" {
  type        = list(string)
  description = "Additional ARNs (SNS topics, incident tools) notified when an alarm fires or recovers."
  default     = []
}

variable "alarm_oldest_message_age_seconds" {
  type        = number
  description = "Alarm when the oldest message of the main queue is older than this, seconds: the workers are not keeping up or are down."
  default     = 300
}

variable "alarm_api_5xx_percent" {
  type        = number
  description = "Alarm when more than this percentage of API responses are 5xx over 5 minutes."
  default     = 1
}

variable "alarm_redis_memory_percent" {
  type        = number
  description = "Alarm when a Redis node's DatabaseMemoryUsagePercentage exceeds this. The parameter group sets noeviction (BullMQ), so a full Redis refuses writes."
  default     = 80
}

variable "expiry_overdue_seconds" {
  type        = number
  description = "Seconds without a completed expiry run after which the scheduler's /readyz fails (EXPIRY_OVERDUE_SECONDS) and the expiry-overdue alarm fires. Keep it several expiry intervals long."
  default     = 600

  validation {
    condition     = var.expiry_overdue_seconds >= 60 && var.expiry_overdue_seconds <= 86400
    error_message = "expiry_overdue_seconds must be between 60 and 86400 (a CloudWatch alarm evaluates at most one day)."
  }
}

variable "partitions_waiting_alarm_seconds" {
  type        = number
  description = "Alarm when a partition of events/deliveries has waited this long past its time for a live delivery (retention by drop holds it back; its disk space is not given back)."
  default     = 259200

  validation {
    condition     = var.partitions_waiting_alarm_seconds >= 60
    error_message = "partitions_waiting_alarm_seconds must be at least 60."
  }
}

variable "alarm_database_cpu_percent" {
  type        = number
  description = "Alarm when database CPU stays above this percentage for 15 minutes."
  default     = 80
}

variable "alarm_database_free_storage_bytes" {
  type        = number
  description = "Alarm when database free storage (RDS FreeStorageSpace, Aurora FreeLocalStorage) drops below this many bytes."
  default     = 5368709120
}

variable "alarm_task_shortfall_minutes" {
  type        = number
  description = "Alarm when a service runs fewer tasks than desired for this many consecutive minutes (a deploy or scale-out takes 1-3 minutes to start tasks)."
  default     = 10

  validation {
    condition     = var.alarm_task_shortfall_minutes >= 1 && var.alarm_task_shortfall_minutes <= 60
    error_message = "alarm_task_shortfall_minutes is 1 to 60."
  }
}

variable "alarm_dlq_oldest_message_age_seconds" {
  type        = number
  description = "Alarm when the oldest dead-lettered message is older than this, seconds (default 7 days: half of the DLQ's 14-day retention, after which SQS deletes it)."
  default     = 604800
}

variable "alarm_database_connections" {
  type        = number
  description = "Alarm when the database has more connections than this. Set it below max_connections of your instance class (db.t4g.medium: about 410; Aurora Serverless v2: grows with the ACUs)."
  default     = 300
}

variable "alarm_database_freeable_memory_bytes" {
  type        = number
  description = "Alarm when the database's freeable memory stays below this many bytes for 15 minutes (default 256 MiB)."
  default     = 268435456
}

variable "alarm_aurora_acu_percent" {
  type        = number
  description = "Aurora only: alarm when capacity used (ACUUtilization, % of aurora_max_capacity) stays above this for 15 minutes."
  default     = 90
}

variable "alarm_redis_cpu_percent" {
  type        = number
  description = "Alarm when a Redis node's engine thread (EngineCPUUtilization) is busier than this percentage, 3 of 5 minutes."
  default     = 80
}

variable "alarm_redis_evictions" {
  type        = number
  description = "Alarm when a Redis node evicts more keys than this in a minute (noeviction is set, so any eviction is a misconfiguration)."
  default     = 0
}

variable "alarm_api_p99_latency_seconds" {
  type        = number
  description = "Alarm when the p99 of the API's response time at the load balancer (TargetResponseTime) exceeds this many seconds, 3 of 5 minutes."
  default     = 1
}
