#!/usr/bin/env bash
# Runs the one-off migrate task and waits for it (terraform_data.migrate, before the services).
# Exits 0 only when the task's container exited 0, so a failed migration fails `terraform apply`.
#   CLUSTER, TASK_DEFINITION, SUBNETS and SECURITY_GROUPS (comma-separated), AWS_REGION, LOG_GROUP
#   TIMEOUT_SECONDS (default 1800): how long to wait for the task to stop
#   POLL_SECONDS (default 6): seconds between two looks at the task
# Needs the AWS CLI v2 with credentials allowing ecs:RunTask, ecs:DescribeTasks and iam:PassRole
# on the migrate task's roles.
set -euo pipefail
: "${CLUSTER:?}" "${TASK_DEFINITION:?}" "${SUBNETS:?}" "${SECURITY_GROUPS:?}" "${AWS_REGION:?}" "${LOG_GROUP:?}"
timeout=${TIMEOUT_SECONDS:-1800}
poll=${POLL_SECONDS:-6}
deadline=$(($(date +%s) + timeout))

started=$(aws ecs run-task --region "$AWS_REGION" --cluster "$CLUSTER" --task-definition "$TASK_DEFINITION" \
  --launch-type FARGATE --started-by terraform-migrate \
  --network-configuration "awsvpcConfiguration={subnets=[$SUBNETS],securityGroups=[$SECURITY_GROUPS],assignPublicIp=DISABLED}" \
  --query '[tasks[0].taskArn, failures[0].reason]' --output text)
IFS=$'\t' read -r task reason <<<"$started"
if [ -z "$task" ] || [ "$task" = "None" ]; then
  echo "migrate: the task did not start: ${reason:-no reason given}" >&2
  exit 1
fi
echo "migrate: started $task (logs: $LOG_GROUP)"

while :; do
  described=$(aws ecs describe-tasks --region "$AWS_REGION" --cluster "$CLUSTER" --tasks "$task" \
    --query 'tasks[0].[lastStatus, containers[0].exitCode, stoppedReason]' --output text)
  IFS=$'\t' read -r status code stopped <<<"$described"
  if [ "$status" = "STOPPED" ]; then
    if [ "$code" = "0" ]; then
      echo "migrate: done (exit code 0)"
      exit 0
    fi
    echo "migrate: failed with exit code $code ($stopped); see the log group $LOG_GROUP, stream prefix migrate" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    # Not stopped: a migration cut in the middle is worse than one that finishes late. A second run
    # waits for this one on Prisma's advisory lock.
    echo "migrate: still $status after ${timeout}s; $task keeps running (aws ecs describe-tasks --cluster $CLUSTER --tasks $task)" >&2
    exit 1
  fi
  sleep "$poll"
done
