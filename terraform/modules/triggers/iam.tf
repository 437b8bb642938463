################################################################################
# IAM: one execution role (what ECS does to start a task) and one task role per
# process (what the code inside may call). Task policies name actions and ARNs exactly.
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only tasks of this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# Execution role ------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "${var.name}: ECS pulls the image, writes logs and reads the task secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

data "aws_iam_policy_document" "execution" {
  # GetAuthorizationToken has no resource-level permissions: AWS requires "*" here.
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # The image's repository only, in whichever account and region it is (see local.image_ecr). A
  # repository in another account must also allow this role in its repository policy.
  dynamic "statement" {
    for_each = local.image_repository_arn == null ? [] : [local.image_repository_arn]
    content {
      sid = "EcrPull"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.this : "${g.arn}:*"]
  }

  # The task's SSM parameters (REDIS_URL, the DATABASE_URLs, the master secret's ARN), exactly.
  # The database password never passes through ECS (see the task roles). SecureString under the
  # AWS-managed aws/ssm key needs no kms:Decrypt grant.
  statement {
    sid       = "TaskParameters"
    actions   = ["ssm:GetParameters"]
    resources = values(local.parameter_arns)
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task roles ------------------------------------------------------------------------
# api, worker, scheduler: log in to Postgres as triggers_app with IAM tokens (rds-db:connect);
# migrate: read the RDS-managed master secret. Nothing else touches the database credentials.

resource "aws_iam_role" "task" {
  for_each = toset(["api", "worker", "scheduler", "migrate"])

  name_prefix        = "${var.name}-${each.key}-"
  description        = "${var.name} ${each.key} task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

# Long-running processes: sign RDS IAM auth tokens for triggers_app, and nothing else in RDS.
data "aws_iam_policy_document" "database_connect" {
  statement {
    sid       = "DatabaseConnectAsApp"
    actions   = ["rds-db:connect"]
    resources = [local.app_database_user_arn]
  }
}

resource "aws_iam_role_policy" "database_connect" {
  for_each = local.services

  name   = "rds-connect-app"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.database_connect.json
}

# migrate: the master password, read by the process at each login failure (rotation-proof).
data "aws_iam_policy_document" "migrate_task" {
  statement {
    sid       = "DatabaseMasterSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.database_secret_arn]
  }

  dynamic "statement" {
    for_each = var.database_master_secret_kms_key_id == null ? [] : [var.database_master_secret_kms_key_id]
    content {
      sid       = "DecryptDatabaseSecret"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "migrate_task" {
  name   = "database-master-secret"
  role   = aws_iam_role.task["migrate"].id
  policy = data.aws_iam_policy_document.migrate_task.json
}

# api: enqueue only (SendMessageBatch is authorised by sqs:SendMessage); attributes for /readyz.
data "aws_iam_policy_document" "api_task" {
  statement {
    sid       = "EnqueueEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.main.arn]
  }

  statement {
    sid       = "QueueReadiness"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.main.arn]
  }

  # ECS Exec (var.enable_execute_command): the SSM agent's data channel. These actions have no
  # resource-level permissions, so AWS requires "*".
  dynamic "statement" {
    for_each = var.enable_execute_command ? [1] : []
    content {
      sid = "EcsExec"
      actions = [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "api_task" {
  name   = "sqs-send"
  role   = aws_iam_role.task["api"].id
  policy = data.aws_iam_policy_document.api_task.json
}

# worker: drain the main queue (the *Batch calls are authorised by the same actions).
data "aws_iam_policy_document" "worker_task" {
  statement {
    sid = "DrainEvents"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  # Read-only: the worker exports the dead-letter depth as a metric (SQS_DLQ_URL).
  statement {
    sid       = "DeadLetterDepth"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.dlq.arn]
  }
}

resource "aws_iam_role_policy" "worker_task" {
  name   = "sqs-drain"
  role   = aws_iam_role.task["worker"].id
  policy = data.aws_iam_policy_document.worker_task.json
}

# Data API (optional) -----------------------------------------------------------
# A customer-managed policy that operators or CI attach to whoever runs `npm run db:migrate`
# through the Data API; no task uses it.

data "aws_iam_policy_document" "data_api_migrator" {
  count = local.is_aurora && var.enable_data_api ? 1 : 0

  statement {
    sid = "DataApi"
    actions = [
      "rds-data:ExecuteStatement",
      "rds-data:BeginTransaction",
      "rds-data:CommitTransaction",
      "rds-data:RollbackTransaction",
    ]
    resources = [aws_rds_cluster.this[0].arn]
  }

  statement {
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.database_secret_arn]
  }
}

resource "aws_iam_policy" "data_api_migrator" {
  count = local.is_aurora && var.enable_data_api ? 1 : 0

  name_prefix = "${var.name}-data-api-migrate-"
  description = "Run ${var.name} migrations through the RDS Data API"
  policy      = data.aws_iam_policy_document.data_api_migrator[0].json

  tags = local.tags
}
