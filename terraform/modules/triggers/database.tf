################################################################################
# PostgreSQL: RDS for PostgreSQL 16 or Aurora PostgreSQL Serverless v2
################################################################################

locals {
  is_rds    = var.database_engine == "rds"
  is_aurora = var.database_engine == "aurora-serverless"

  database_endpoint = local.is_rds ? aws_db_instance.this[0].address : aws_rds_cluster.this[0].endpoint
  database_port     = 5432

  # The RDS-managed secret ({"username","password"}), rotated by RDS.
  database_secret_arn = local.is_rds ? aws_db_instance.this[0].master_user_secret[0].secret_arn : aws_rds_cluster.this[0].master_user_secret[0].secret_arn

  # No credentials in the URL: node-postgres falls back to PGPASSWORD, which ECS injects from the
  # RDS-managed secret at task start. A URL secret built at apply time would go stale at the
  # first automatic rotation; this way a new task always gets the current password.
  database_url = "postgresql://${var.database_username}@${local.database_endpoint}:${local.database_port}/${var.database_name}?${var.database_ssl_query}"
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-db"
  subnet_ids = local.database_subnet_ids

  tags = local.tags
}

resource "aws_db_instance" "this" {
  count = local.is_rds ? 1 : 0

  identifier     = var.name
  engine         = "postgres"
  engine_version = var.rds_engine_version
  instance_class = var.rds_instance_class

  db_name  = var.database_name
  username = var.database_username
  port     = local.database_port

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.database_master_secret_kms_key_id

  allocated_storage     = var.rds_allocated_storage
  max_allocated_storage = var.rds_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.database_kms_key_id

  multi_az               = var.rds_multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false

  backup_retention_period   = var.database_backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade      = true
  performance_insights_enabled    = true
  enabled_cloudwatch_logs_exports = ["postgresql"]

  tags = local.tags
}

resource "aws_rds_cluster" "this" {
  count = local.is_aurora ? 1 : 0

  cluster_identifier = var.name
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned"
  engine_version     = var.aurora_engine_version

  database_name   = var.database_name
  master_username = var.database_username
  port            = local.database_port

  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.database_master_secret_kms_key_id

  # The RDS Data API: HTTPS access authorised by IAM + the master secret (see README, migrations).
  enable_http_endpoint = var.enable_data_api

  storage_encrypted = true
  kms_key_id        = var.database_kms_key_id

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]

  backup_retention_period   = var.database_backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  enabled_cloudwatch_logs_exports = ["postgresql"]

  serverlessv2_scaling_configuration {
    min_capacity = var.aurora_min_capacity
    max_capacity = var.aurora_max_capacity
  }

  tags = local.tags
}

resource "aws_rds_cluster_instance" "this" {
  count = local.is_aurora ? var.aurora_instance_count : 0

  identifier         = "${var.name}-${count.index + 1}"
  cluster_identifier = aws_rds_cluster.this[0].id
  engine             = aws_rds_cluster.this[0].engine
  engine_version     = aws_rds_cluster.this[0].engine_version
  instance_class     = "db.serverless"

  db_subnet_group_name         = aws_db_subnet_group.this.name
  publicly_accessible          = false
  auto_minor_version_upgrade   = true
  performance_insights_enabled = true

  tags = local.tags
}
