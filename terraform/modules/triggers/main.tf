data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "triggers"
    Name                        = var.name
  })

  # Known at plan time (data sources are read during plan), so the task definitions that carry
  # them are too. From the region's EC2 endpoint (ec2.<region>.<dns suffix>) because
  # data.aws_region's `name` is deprecated in provider 6.x and its `region` does not exist in 5.x.
  region     = split(".", data.aws_region.current.endpoint)[1]
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix

  # The ECR repository of var.image, which may be in another account or region (a central
  # registry): <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repository>[:tag|@digest].
  image_ecr = regex("^(?:(?P<account>[0-9]{12})\\.dkr\\.ecr(?:-fips)?\\.(?P<region>[a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/(?P<repository>[^:@]+))?", var.image)
  # What the execution role may pull from: image_repository_arn when given, else the image's own
  # repository; null (no pull statement) for an image outside ECR (e.g. a public registry).
  image_repository_arn = var.image_repository_arn != null ? var.image_repository_arn : (
    local.image_ecr.account == null ? null : "arn:${local.partition}:ecr:${local.image_ecr.region}:${local.image_ecr.account}:repository/${local.image_ecr.repository}"
  )

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
