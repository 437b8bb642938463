data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
}

# A VPC with public subnets (ALB), private subnets (tasks, behind NAT) and database subnets.
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.21"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  public_subnets   = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i)]
  private_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 10)]
  database_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 20)]

  create_database_subnet_group = false
  enable_nat_gateway           = true
  # One NAT gateway is cheaper; one per AZ keeps the tasks of the other AZs online when an AZ fails.
  single_nat_gateway     = !var.one_nat_gateway_per_az
  one_nat_gateway_per_az = var.one_nat_gateway_per_az
  enable_dns_hostnames   = true
  enable_dns_support     = true

  # VPC flow logs to CloudWatch Logs (the module creates the group and the role that writes it).
  enable_flow_log                                 = var.enable_flow_log
  create_flow_log_cloudwatch_log_group            = var.enable_flow_log
  create_flow_log_cloudwatch_iam_role             = var.enable_flow_log
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = 30
}

module "triggers" {
  source = "../../modules/triggers"

  name  = var.name
  image = var.image

  vpc_id              = module.vpc.vpc_id
  public_subnet_ids   = module.vpc.public_subnets
  private_subnet_ids  = module.vpc.private_subnets
  database_subnet_ids = module.vpc.database_subnets
  # The services wait for the private subnets' routes to the NAT gateway (ECR, Secrets Manager, SQS).
  network_dependency_ids = concat(module.vpc.private_nat_gateway_route_ids, module.vpc.natgw_ids)

  certificate_arn = var.certificate_arn
  domain_name     = var.domain_name
  route53_zone_id = var.route53_zone_id

  database_engine        = var.database_engine
  enable_execute_command = var.enable_execute_command
  vpc_endpoints = {
    enabled         = var.vpc_endpoints
    route_table_ids = module.vpc.private_route_table_ids
  }
  waf_web_acl_arn     = var.waf_web_acl_arn
  alb_access_logs     = var.alb_access_logs_bucket == null ? null : { bucket = var.alb_access_logs_bucket, prefix = var.name }
  enable_data_api     = var.database_engine == "aurora-serverless"
  aurora_min_capacity = 0.5
  aurora_max_capacity = 4
  deletion_protection = var.deletion_protection

  sqs_visibility_timeout_seconds = 60
  sqs_max_receive_count          = 5

  api = {
    min_count = 2
    max_count = 6
  }

  worker = {
    min_count        = 1
    max_count        = 10
    backlog_per_task = 2000
    fargate_spot     = var.worker_fargate_spot
  }

  environment = {
    RATE_LIMIT_PER_MINUTE = "6000"
    MAX_DELIVERIES        = "10"
  }

  tags = {
    Environment = "example"
  }
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = module.triggers.alarm_topic_arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
