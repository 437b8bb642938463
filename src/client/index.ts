/**
 * The Triggers client library: `require("triggers/client")`.
 *
 * - TriggersClient: send / sendBatch (Idempotency-Key, retries on 429/503 honouring Retry-After)
 *   and the inbox calls (lease with long polling, ack, ackLeases, nack, extend).
 * - Consumer: long-polls the inbox and runs a handler per event or per batch with bounded
 *   concurrency, heartbeats leases, acks on success, nacks with backoff on failure, stops gracefully.
 */
export { TriggersClient } from "./producer";
export type { Accepted, EventInput, InboxEvent, InboxFilter, LeaseAckResult, LeaseRequest } from "./producer";
export { Consumer, ConsumerError, defaultNackDelay } from "./consumer";
export type { ConsumerErrorKind, ConsumerEvents, ConsumerOptions } from "./consumer";
export { TriggersError, parseRetryAfter } from "./http";
export type { ClientOptions } from "./http";
