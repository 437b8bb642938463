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
    api       = ["node", var.cli_script, "api"]
    worker    = ["node", var.cli_script, "worker"]
    scheduler = ["node", var.cli_script, "scheduler"]
    migrate   = ["node", var.cli_script, "migrate"]
  }

  api_port = 3000
}
