data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "triggers"
    Name                        = var.name
  })

  # The region from an ARN rather than data.aws_region: its `name` is deprecated in provider 6.x
  # and its replacement `region` does not exist in 5.x, and the module supports both.
  region     = split(":", aws_ecs_cluster.this.arn)[3]
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  database_subnet_ids = length(var.database_subnet_ids) > 0 ? var.database_subnet_ids : var.private_subnet_ids

  # The image's ENTRYPOINT is the CLI (`node <options> dist/src/cli/main.js`); a task command is only the
  # sub-command, appended to it. (test/integration/image-argv.test.ts runs ENTRYPOINT + these.)
  commands = {
    api       = ["api"]
    worker    = ["worker"]
    scheduler = ["scheduler"]
    migrate   = ["migrate"]
  }

  # The processes that run as ECS services (migrate is a one-off task).
  services = toset(["api", "worker", "scheduler"])

  api_port = 3000
}
