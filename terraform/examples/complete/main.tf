module "triggers" {
  source = "../../modules/triggers"

  name  = var.name
  image = var.image

  # The VPC of vpc.tf.
  vpc_id              = aws_vpc.this.id
  public_subnet_ids   = aws_subnet.public[*].id
  private_subnet_ids  = aws_subnet.private[*].id
  database_subnet_ids = aws_subnet.database[*].id
  # The services wait for the private subnets' routes to the NAT gateway (ECR, Secrets Manager, SQS).
  network_dependency_ids = concat(aws_route.private_nat_gateway[*].id, aws_nat_gateway.this[*].id, aws_route_table_association.private[*].id)

  certificate_arn = var.certificate_arn
  domain_name     = var.domain_name
  route53_zone_id = var.route53_zone_id

  database_engine        = var.database_engine
  enable_execute_command = var.enable_execute_command
  vpc_endpoints = {
    enabled         = var.vpc_endpoints
    route_table_ids = aws_route_table.private[*].id
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
