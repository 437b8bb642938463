################################################################################
# ElastiCache Redis for BullMQ, rate limits and the idempotency fast path
################################################################################

resource "random_password" "redis_auth_token" {
  # ElastiCache accepts 16-128 printable characters with a restricted set of symbols;
  # alphanumerics only keeps the token safe to embed in a URL as well.
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-redis"
  subnet_ids = local.database_subnet_ids

  tags = local.tags
}

resource "aws_elasticache_parameter_group" "this" {
  name   = "${var.name}-redis"
  family = var.redis_parameter_group_family

  # BullMQ needs Redis to refuse writes rather than silently evict job keys.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  # A tenant's receipts of one minute are one set, which can hold many members: when it expires,
  # free it off Redis's main thread rather than block every command meanwhile.
  parameter {
    name  = "lazyfree-lazy-expire"
    value = "yes"
  }

  tags = local.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "${var.name}: BullMQ, rate limits, idempotency cache"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  parameter_group_name = aws_elasticache_parameter_group.this.name
  port                 = 6379

  num_cache_clusters         = var.redis_num_cache_clusters
  automatic_failover_enabled = var.redis_num_cache_clusters > 1
  multi_az_enabled           = var.redis_num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth_token.result
  # A changed token is added next to the old one, so running tasks (REDIS_URL is read at start)
  # keep working; set "SET" in a later apply, after a redeploy, to drop the old token.
  auth_token_update_strategy = var.redis_auth_token_update_strategy

  snapshot_retention_limit = var.redis_snapshot_retention_days

  tags = local.tags
}

# REDIS_URL with the auth token, read by ECS at task start (execution role) into the tasks'
# environment. An SSM parameter, so its ARN is known at plan time (a Secrets Manager secret's ARN
# ends in a random suffix) and the task definitions are readable in the plan.
resource "aws_ssm_parameter" "redis_url" {
  name        = "/${var.name}/redis-url"
  description = "REDIS_URL of ${var.name} (rediss://:<auth token>@<primary endpoint>:6379)"
  type        = "SecureString"
  value       = "rediss://:${random_password.redis_auth_token.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"

  tags = local.tags
}
