################################################################################
# SQS: events queue and its dead-letter queue
################################################################################

locals {
  queue_name = "${var.name}-events"
  dlq_name   = "${var.name}-events-dlq"
  # The URLs SQS gives these queues, composed so that the task definitions are known at plan time.
  queue_url = "https://sqs.${local.region}.${local.dns_suffix}/${local.account_id}/${local.queue_name}"
  dlq_url   = "https://sqs.${local.region}.${local.dns_suffix}/${local.account_id}/${local.dlq_name}"
}

resource "aws_sqs_queue" "dlq" {
  name = local.dlq_name

  sqs_managed_sse_enabled   = true
  message_retention_seconds = var.sqs_dlq_message_retention_seconds
  # As large as the main queue's: a dead-lettered message must fit.
  max_message_size = 262144

  tags = local.tags
}

resource "aws_sqs_queue" "main" {
  name = local.queue_name

  sqs_managed_sse_enabled   = true
  message_retention_seconds = var.sqs_message_retention_seconds
  # Matches the worker's WORKER_VISIBILITY_SECONDS (see the variable's description).
  visibility_timeout_seconds = var.sqs_visibility_timeout_seconds
  # Long polling: empty receives cost nothing and messages are picked up as they arrive.
  receive_wait_time_seconds = 20
  max_message_size          = 262144

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.sqs_max_receive_count
  })

  tags = local.tags
}

# Only the main queue may dead-letter into the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}
