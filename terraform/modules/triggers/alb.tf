################################################################################
# Application Load Balancer: HTTPS to the api tasks, HTTP redirected
################################################################################

resource "aws_lb" "this" {
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = var.alb_internal
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  idle_timeout               = 60
  # One switch with the database's: teardown lifts both with one apply (see README).
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.alb_access_logs == null ? [] : [var.alb_access_logs]
    content {
      enabled = true
      bucket  = access_logs.value.bucket
      prefix  = access_logs.value.prefix
    }
  }

  tags = local.tags
}

resource "aws_lb_target_group" "api" {
  name        = "${var.name}-api"
  target_type = "ip"
  protocol    = "HTTP"
  port        = local.api_port
  vpc_id      = var.vpc_id

  # Seconds a draining task keeps receiving in-flight requests during a deploy or scale-in.
  deregistration_delay = var.api.deregistration_delay

  # /healthz (the process is up and serving), not /readyz: readiness includes Postgres, SQS and
  # Redis, and one blip of a shared dependency would mark every task unhealthy at once and make
  # ECS replace them all. A dependency outage shows as 503s from the app and in the alarms instead.
  health_check {
    path                = var.api.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  tags = local.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }

  tags = local.tags
}

# An existing WAF web ACL (regional, same region) in front of the API.
resource "aws_wafv2_web_acl_association" "api" {
  count = var.waf_web_acl_arn == null ? 0 : 1

  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.waf_web_acl_arn
}

resource "aws_route53_record" "api" {
  count = var.route53_zone_id != null && var.domain_name != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}
