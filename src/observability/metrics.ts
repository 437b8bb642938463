import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Every Prometheus metric of the service, on one registry per process (so tests can build several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    httpRequests: new Counter({
      name: "triggers_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "triggers_http_request_duration_seconds",
      help: "HTTP request latency by route",
      labelNames: ["method", "route"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    eventsAccepted: new Counter({
      name: "triggers_events_accepted_total",
      help: "Events confirmed by SQS and answered 202",
      registers: [registry],
    }),
    enqueueFailures: new Counter({
      name: "triggers_enqueue_failures_total",
      help: "Events SQS did not accept (answered 503)",
      registers: [registry],
    }),
    sqsSendBatches: new Histogram({
      name: "triggers_sqs_send_batch_size",
      help: "Events per SendMessageBatch call (up to 10 entries; entries pack several events beyond 10)",
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    sqsSendSeconds: new Histogram({
      name: "triggers_sqs_send_seconds",
      help: "Latency of SendMessageBatch calls",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    workerBatches: new Counter({
      name: "triggers_worker_batches_total",
      help: "Batches the ingest worker committed",
      registers: [registry],
    }),
    workerRowsInserted: new Counter({
      name: "triggers_worker_rows_inserted_total",
      help: "Event rows inserted by the ingest worker",
      registers: [registry],
    }),
    workerDuplicates: new Counter({
      name: "triggers_worker_duplicates_total",
      help: "Messages whose event was already stored (redelivery or idempotent retry)",
      registers: [registry],
    }),
    workerPoison: new Counter({
      name: "triggers_worker_poison_messages_total",
      help: "Message parts the worker cannot decode and events the database refuses; their messages are left for the dead-letter queue",
      registers: [registry],
    }),
    workerErrors: new Counter({
      name: "triggers_worker_errors_total",
      help: "Receive, insert or delete failures of the ingest worker",
      labelNames: ["stage"] as const,
      registers: [registry],
    }),
    ingestLag: new Histogram({
      name: "triggers_ingest_lag_seconds",
      help: "Time from API acceptance to the row being committed",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "triggers_queue_messages",
      help: "Approximate messages in the SQS queues (polled at a bounded rate)",
      labelNames: ["queue", "state"] as const,
      registers: [registry],
    }),
    inboxLeased: new Counter({
      name: "triggers_inbox_leased_total",
      help: "Events handed out by GET /inbox",
      registers: [registry],
    }),
    inboxAcks: new Counter({
      name: "triggers_inbox_acks_total",
      help: "Events acknowledged",
      registers: [registry],
    }),
    inboxNacks: new Counter({
      name: "triggers_inbox_nacks_total",
      help: "Leases ended by nack",
      registers: [registry],
    }),
    longPollWaiters: new Gauge({
      name: "triggers_long_poll_waiters",
      help: "Long-polling GET /inbox requests waiting in this API process",
      registers: [registry],
    }),
    longPollsRefused: new Counter({
      name: "triggers_long_polls_refused_total",
      help: "Long polls refused with 429 long_poll_quota_exceeded, by the quota reached (key or tenant)",
      labelNames: ["scope"] as const,
      registers: [registry],
    }),
    subscriptionBacklog: new Gauge({
      name: "triggers_subscription_backlog",
      help: "Events not yet acknowledged of the BACKLOG_TOP_N subscriptions with the largest backlog (API role, polled); the others have no series",
      labelNames: ["tenant", "subscription"] as const,
      registers: [registry],
    }),
    inboxDead: new Counter({
      name: "triggers_inbox_dead_total",
      help: "Events that became dead after max deliveries",
      registers: [registry],
    }),
    expiryDeleted: new Counter({
      name: "triggers_expiry_deleted_total",
      help: "Rows removed by the expiry job",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    expiryFailures: new Counter({
      name: "triggers_expiry_failures_total",
      help: "Expiry runs that failed for good (BullMQ: after the last attempt; embedded timer: every failed run)",
      registers: [registry],
    }),
    expiryIncomplete: new Counter({
      name: "triggers_expiry_incomplete_total",
      help: "Expiry runs that ended with expired rows left, by reason (backed-off: paced for live traffic; budget: backlog larger than one run)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    expiryPacing: new Counter({
      name: "triggers_expiry_pacing_decisions_total",
      help: "Decisions of the expiry pacer (back-off by reason, or speed-up)",
      labelNames: ["action", "reason"] as const,
      registers: [registry],
    }),
    partitionsRetired: new Counter({
      name: "triggers_partitions_retired_total",
      help: "Partition pairs (events and deliveries) dropped by retention",
      registers: [registry],
    }),
    partitionsWaiting: new Gauge({
      name: "triggers_partitions_waiting",
      help: "Partition pairs past their time that a live delivery (pending, leased, or within its retention) holds back from the drop",
      registers: [registry],
    }),
    partitionsWaitingOldest: new Gauge({
      name: "triggers_partitions_waiting_oldest_seconds",
      help: "Seconds since the upper bound of the oldest partition pair held back from the drop (0: none waits)",
      registers: [registry],
    }),
    expiryDuty: new Gauge({
      name: "triggers_expiry_duty",
      help: "Share of time the expiry pacer currently allows for deleting",
      registers: [registry],
    }),
    expiryDuration: new Histogram({
      name: "triggers_expiry_run_seconds",
      help: "Duration of expiry runs",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
