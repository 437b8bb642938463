/**
 * The Triggers client library, package `@triggers/client` (see docs/client.md).
 *
 * - TriggersClient: send / sendBatch (an idempotency key on every event, retries on 429/502/503/504
 *   honouring Retry-After within bounded attempts and a deadline) and the inbox calls (lease with
 *   long polling, ack, ackLeases, nack, extend), on any subscription; CloudEvents 1.0 both ways
 *   (sendCloudEvent in structured or binary mode, sendCloudEvents, leaseCloudEvents, getCloudEvent).
 * - Consumer: long-polls the inbox and runs a handler per event or per batch with bounded
 *   concurrency, heartbeats leases, acks on success, nacks with backoff on failure, backs off
 *   empty polls, stops gracefully.
 *
 * Wire objects keep the API's snake_case fields; options and class properties are camelCase.
 */
export { TriggersClient } from "./producer";
export { CLOUDEVENT_BATCH_CONTENT_TYPE, CLOUDEVENT_CONTENT_TYPE, extensionsOf, toBinary, toStructured } from "./cloudevents";
export type { CloudEventInput, DeliveredCloudEvent } from "./cloudevents";
export type { Accepted, BatchEventInput, EventInput, InboxCallOptions, InboxEvent, InboxFilter, InboxPage, LeaseAckResult, LeaseRequest } from "./producer";
export { BatchPartiallyAcceptedError } from "./batch-partially-accepted-error";
export type { BatchItemAccepted, BatchItemRejected, BatchItemResult } from "./batch-partially-accepted-error";
export { Consumer, ConsumerError, defaultNackDelay } from "./consumer";
export type { ConsumerErrorKind, ConsumerEvents, ConsumerOptions } from "./consumer";
export { TriggersError, isRetryableStatus, parseRetryAfter } from "./http";
export type { ClientOptions } from "./http";
