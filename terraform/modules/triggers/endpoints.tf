################################################################################
# Optional VPC endpoints: the tasks reach AWS APIs without a NAT gateway
################################################################################

locals {
  # Interface endpoints for every AWS API the tasks (and ECS, on their behalf) call at start and at
  # run time: queue, parameters, the master secret, image pulls, logs. ECR's layers come from S3,
  # through the gateway endpoint below.
  interface_endpoints = var.vpc_endpoints.enabled ? toset(["sqs", "ssm", "secretsmanager", "ecr.api", "ecr.dkr", "logs"]) : toset([])
}

resource "aws_security_group" "endpoints" {
  count = var.vpc_endpoints.enabled ? 1 : 0

  name_prefix = "${var.name}-endpoints-"
  description = "${var.name} VPC endpoints (HTTPS from the tasks only)"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-endpoints" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_tasks" {
  count = var.vpc_endpoints.enabled ? 1 : 0

  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = var.vpc_id
  service_name        = "${data.aws_partition.current.reverse_dns_prefix}.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  tags = merge(local.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_vpc_endpoint" "s3" {
  count = var.vpc_endpoints.enabled ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "${data.aws_partition.current.reverse_dns_prefix}.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.vpc_endpoints.route_table_ids

  tags = merge(local.tags, { Name = "${var.name}-s3" })

  lifecycle {
    precondition {
      condition     = length(var.vpc_endpoints.route_table_ids) > 0
      error_message = "vpc_endpoints.route_table_ids must name the private subnets' route tables (ECR image layers come from S3 through the gateway endpoint)."
    }
  }
}
