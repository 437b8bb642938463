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
