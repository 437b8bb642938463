################################################################################
# PostgreSQL: RDS for PostgreSQL 16 or Aurora PostgreSQL Serverless v2
################################################################################

locals {
  is_rds    = var.database_engine == "rds"
  is_aurora = var.database_engine == "aurora-serverless"

  database_endpoint = local.is_rds ? aws_db_instance.this[0].address : aws_rds_cluster.this[0].endpoint
  database_port     = 5432

  # The RDS-managed secret ({"username","password"}), rotated by RDS every 7 days.
  database_secret_arn = local.is_rds ? aws_db_instance.this[0].master_user_secret[0].secret_arn : aws_rds_cluster.this[0].master_user_secret[0].secret_arn

  # The least-privilege role the long-running processes log in as. The migration
  # 20261201000100_app_role creates it (LOGIN, no password, GRANT rds_iam) with DML rights only.
  app_database_user = "triggers_app"

  # No credentials in either URL.
  # - api, worker, scheduler: triggers_app with RDS IAM authentication (DATABASE_IAM_AUTH=true):
  #   the process signs a 15-minute token per new connection with its task role; nothing to rotate.
  # - migrate: the master user; the process reads the password from the RDS-managed secret
  #   (DATABASE_PASSWORD_SECRET_ARN) and re-reads it when a login fails, so rotation never bites.
  final_snapshot_suffix = nonsensitive(random_password.final_snapshot.result)

  database_location = "${local.database_endpoint}:${local.database_port}/${var.database_name}?${var.database_ssl_query}"
  app_database_url  = "postgresql://${local.app_database_user}@${local.database_location}"
  database_url      = "postgresql://${var.database_username}@${local.database_location}"

  # What rds-db:connect is granted on: arn:…:rds-db:<region>:<account>:dbuser:<resource id>/<user>.
  database_resource_id  = local.is_rds ? aws_db_instance.this[0].resource_id : aws_rds_cluster.this[0].cluster_resource_id
  app_database_user_arn = "arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${local.database_resource_id}/${local.app_database_user}"
}

# A final snapshot name must be unused in the account and region, and snapshots outlive their
# database: "<name>-final" alone would make the second destroy (or a replacement) of a database
# with the same name fail. The suffix is drawn when the database is created and changes with what
# replaces it (its identifier, engine, storage key, database or master user name). A
# random_password only because the module needs no provider beyond aws and random's
# random_password (also the Redis token); the suffix is no secret, hence nonsensitive().
resource "random_password" "final_snapshot" {
  length  = 8
  special = false
  upper   = false

  keepers = {
    identifier = var.name
    engine     = var.database_engine
    kms_key_id = coalesce(var.database_kms_key_id, "aws/rds")
    database   = var.database_name
    username   = var.database_username
  }
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

  # The application role logs in with IAM tokens (rds-db:connect in the task roles).
  iam_database_authentication_enabled = true

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
  final_snapshot_identifier = "${var.name}-final-${local.final_snapshot_suffix}"

  auto_minor_version_upgrade      = true
  performance_insights_enabled    = true
  enabled_cloudwatch_logs_exports = ["postgresql"]
  # The export's log group, with its retention (alarms-platform.tf).
  depends_on = [aws_cloudwatch_log_group.database]

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

  # The application role logs in with IAM tokens (rds-db:connect in the task roles).
  iam_database_authentication_enabled = true

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
  final_snapshot_identifier = "${var.name}-final-${local.final_snapshot_suffix}"

  enabled_cloudwatch_logs_exports = ["postgresql"]
  # The export's log group, with its retention (alarms-platform.tf).
  depends_on = [aws_cloudwatch_log_group.database]

  serverlessv2_scaling_configuration {
    min_capacity = var.aurora_min_capacity
    max_capacity = var.aurora_max_capacity
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.aurora_min_capacity <= var.aurora_max_capacity
      error_message = "aurora_min_capacity must not exceed aurora_max_capacity."
    }
  }
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
