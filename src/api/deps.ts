import type { Redis } from "ioredis";
import type { Config } from "../config";
import type { AcceptDeps } from "../ingest/accept-events";
import type { AcceptedReceipts } from "../ingest/accepted-receipts";
import type { IdempotencyGuard } from "../ingest/idempotency";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { SendBatcher } from "../queue/send-batcher";
import type { SqsQueue } from "../queue/sqs-queue";
import type { Database } from "../store/database";
import type { Wakeups } from "../inbox/wakeups";
import type { LongPollQuota } from "../inbox/long-poll-quota";
import type { KeyCache } from "./middleware/auth";
import type { SchemaRegistry } from "../schemas/registry";

/** Everything the HTTP API needs, built by the API role (src/roles/api.ts) from a container. */
export interface ApiDeps {
  readonly config: Config;
  readonly db: Database;
  readonly queue: SqsQueue;
  readonly batcher: SendBatcher;
  readonly idempotency: IdempotencyGuard;
  readonly receipts: AcceptedReceipts;
  /** What POST /events and /events/batch accept events with (the batcher, idempotency and receipts above, and their metrics and log). */
  readonly accept: AcceptDeps;
  readonly keys: KeyCache;
  readonly redis: Redis | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Wakes long-polling GET /inbox requests of this process. */
  readonly wakeups: Wakeups;
  /** Concurrent long polls per API key and per tenant in this process. */
  readonly longPolls: LongPollQuota;
  /** Every tenant's latest event schemas, compiled and cached (docs/schemas.md). */
  readonly schemas: SchemaRegistry;
}
