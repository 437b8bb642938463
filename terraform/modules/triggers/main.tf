data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "triggers"
    Name                        = var.name
  })

  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  database_subnet_ids = length(var.database_subnet_ids) > 0 ? var.database_subnet_ids : var.private_subnet_ids

  # The one command-line entry point of the image; each process is a sub-command.
  commands = {
    api       = ["node", "dist/cli/main.js", "api"]
    worker    = ["node", "dist/cli/main.js", "worker"]
    scheduler = ["node", "dist/cli/main.js", "scheduler"]
    migrate   = ["node", "dist/cli/main.js", "migrate"]
  }

  api_port = 3000
}
