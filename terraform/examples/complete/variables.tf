variable "region" {
  type        = string
  description = "AWS region to deploy into."
  default     = "eu-west-1"
}

variable "name" {
  type        = string
  description = "Name prefix of every resource."
  default     = "triggers"
}

variable "image" {
  type        = string
  description = "Container image of the service, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/triggers:1.0.0."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate (in region) for domain_name."
}

variable "domain_name" {
  type        = string
  description = "Host name of the API, e.g. triggers.example.com."
}

variable "route53_zone_id" {
  type        = string
  description = "Hosted zone that holds domain_name; null to manage DNS yourself."
  default     = null
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC this example creates."
  default     = "10.40.0.0/16"
}

variable "database_engine" {
  type        = string
  description = "\"rds\" or \"aurora-serverless\" (the latter with the Data API enabled in this example)."
  default     = "aurora-serverless"
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the database from deletion; set false and apply before destroying the example."
  default     = true
}

variable "alarm_email" {
  type        = string
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail); null for none."
  default     = null
}

variable "enable_execute_command" {
  type        = bool
  description = "ECS Exec into the api tasks, unlogged; turn on to create the first API key (README), then off."
  default     = false
}

variable "one_nat_gateway_per_az" {
  type        = bool
  description = "One NAT gateway per availability zone instead of a single one (about 35 USD a month each, plus traffic)."
  default     = false
}

variable "enable_flow_log" {
  type        = bool
  description = "Send the VPC's flow logs to CloudWatch Logs (kept 30 days)."
  default     = true
}

variable "vpc_endpoints" {
  type        = bool
  description = "Create VPC endpoints for SQS, SSM, Secrets Manager, ECR, CloudWatch Logs and S3, so AWS API traffic bypasses the NAT gateway."
  default     = false
}

variable "waf_web_acl_arn" {
  type        = string
  description = "Regional WAFv2 web ACL to put in front of the API; null for none."
  default     = null
}

variable "alb_access_logs_bucket" {
  type        = string
  description = "S3 bucket for the load balancer's access logs (prefix: name); null for none."
  default     = null
}

variable "worker_fargate_spot" {
  type        = bool
  description = "Run every worker task beyond the first on Fargate Spot."
  default     = false
}
