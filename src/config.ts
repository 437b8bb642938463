import Joi from "joi";
import { resolve } from "node:path";

/**
 * The service's whole configuration, read from the environment once at start-up.
 * Every unset variable has a default that runs the embedded all-in-one setup.
 */
export interface Config {
  /** HTTP bind address. HOST, default 127.0.0.1. */
  readonly host: string;
  /** HTTP port of the API. */
  readonly port: number;
  /** Port of the /metrics endpoint of worker and scheduler processes. */
  readonly metricsPort: number;
  /** Subscriptions with the largest backlog the API role exports as triggers_subscription_backlog (one query a minute); 0 for none. */
  readonly backlogTopN: number;
  /** Folder for embedded state (PGlite data, dev API key). TRIGGERS_DATA_DIR, default ./.triggers. */
  readonly dataDir: string;
  /** TRIGGERS_DATA_DIR was set (not the default): `migrate` and `keys` may then use the embedded database (requireCommandDatabase). */
  readonly dataDirExplicit: boolean;
  /** NODE_ENV=production (the image sets it): `migrate` and `keys` never use the embedded database. */
  readonly production: boolean;
  /** Postgres URL; unset means embedded PGlite in <dataDir>/pgdata. `?schema=` selects a schema. */
  readonly databaseUrl: string | undefined;
  /**
   * Where the Postgres password comes from when DATABASE_URL has none (see src/store/db-connection.ts):
   * RDS IAM tokens (DATABASE_IAM_AUTH=true), the Secrets Manager secret DATABASE_PASSWORD_SECRET_ARN
   * (JSON with `password`) or the file DATABASE_PASSWORD_FILE. At most one.
   */
  readonly databaseAuth: {
    readonly iam: boolean;
    readonly secretArn: string | undefined;
    readonly passwordFile: string | undefined;
  };
  readonly sqs: {
    /** SQS endpoint override (an emulator). */
    readonly endpoint: string | undefined;
    /** Main queue URL; unset with SQS_ENDPOINT unset means an in-process emulator. */
    readonly queueUrl: string | undefined;
    /** Dead-letter queue URL, for readiness and depth metrics. */
    readonly dlqUrl: string | undefined;
    /** Queue name used when the queue is created by this service (emulator). */
    readonly queueName: string;
    /** AWS region. */
    readonly region: string;
    /** Receives before a message moves to the DLQ (emulator queues). */
    readonly maxReceiveCount: number;
    /** While a SendMessageBatch is in flight, longest a send waits to share the next one, ms. */
    readonly sendLingerMs: number;
    /** Longest a SendMessageBatch may take before its requests answer 503, ms. */
    readonly sendTimeoutMs: number;
    /** Per-attempt HTTP timeouts of SQS calls (connect, then idle socket), ms. SQS_CONNECT_TIMEOUT_MS 1000, SQS_REQUEST_TIMEOUT_MS 2000. */
    readonly connectTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** SendMessageBatch calls in flight at most per process; past it a send answers 503 at once. */
    readonly maxConcurrentSends: number;
  };
  /** Redis URL for rate limits, idempotency fast path and BullMQ; unset = in-process fallbacks. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and BullMQ queue of this deployment. */
  readonly redisPrefix: string;
  /** Deadline of each Redis command, ms (a late one fails and its caller degrades). */
  readonly redisCommandTimeoutMs: number;
  /** Longest a Redis (re)connection may take, ms. */
  readonly redisConnectTimeoutMs: number;
  readonly db: {
    /** Deadline of each Postgres statement (server statement_timeout and client query_timeout), ms. */
    readonly queryTimeoutMs: number;
    /** Longest wait for a pooled or new Postgres connection, ms. */
    readonly connectTimeoutMs: number;
  };
  readonly http: {
    /** The whole request (headers and body) must arrive within this, ms. */
    readonly requestTimeoutMs: number;
    /** The request headers must arrive within this, ms. */
    readonly headersTimeoutMs: number;
    /** Idle keep-alive connections are closed after this, ms. */
    readonly keepAliveTimeoutMs: number;
    /** Open connections per API process at most; a reserve of 16 more serve GET /healthz only (503 otherwise), past that they are closed on accept. */
    readonly maxConnections: number;
    /** Take the client address from X-Forwarded-For (last hop) behind a load balancer. */
    readonly trustProxy: boolean;
  };
  /** Failed authentications per client address per minute before that address gets 429s for unknown keys. */
  readonly authFailuresPerMinute: number;
  readonly worker: {
    /** Concurrent long-poll receivers per worker process; more receivers mean bigger group commits. */
    readonly receivers: number;
    /** Long-poll wait, seconds (1–20). */
    readonly waitSeconds: number;
    /** Visibility timeout of received messages, seconds. */
    readonly visibilitySeconds: number;
  };
  readonly inbox: {
    /** Deliveries after which an event is dead. */
    readonly maxDeliveries: number;
    /** Default lease, seconds. */
    readonly defaultVisibilitySeconds: number;
    /** Concurrent long polls (GET /inbox with wait_seconds > 0) per API key, per API process (at most the tenant quota); more answer 429. */
    readonly longPollsPerKey: number;
    /** Concurrent long polls per tenant (all its keys), per API process; more answer 429. */
    readonly longPollsPerTenant: number;
    /** Interval of the shared safety re-check of waiting long polls (one indexed existence check per waited-on subscription and filter), ms. */
    readonly longPollRecheckMs: number;
  };
  readonly limits: {
    /** Largest request body, bytes. */
    readonly maxEventBytes: number;
    /** Default requests per minute per API key. */
    readonly rateLimitPerMinute: number;
    /**
     * Idempotency claims one tenant may make in Redis per hour (each ≈ 180–450 B, kept 1 h); past
     * it the tenant's new keys are claimed in process memory only. IDEMPOTENCY_CLAIMS_PER_TENANT,
     * default 100000 (≤ 2 h of claims live: ≈ 36–90 MB per tenant).
     */
    readonly idempotencyClaimsPerTenant: number;
    /**
     * Idempotency claims all tenants together may make in Redis per hour; past it every tenant's
     * new keys are claimed in process memory only.
     */
    readonly idempotencyClaimsTotal: number;
    /**
     * Subscriptions a tenant may have at once, `default` included (so also the most deliveries one
     * event fans out to).
     */
    readonly maxSubscriptionsPerTenant: number;
    /**
     * Rows a tenant's accepted events may write per minute, across API processes (Redis; per API
     * process while Redis is down): each event costs 1 + its tenant's live subscriptions (cached
     * with the API key, API_KEY_CACHE_MS). Past it POST /events and /events/batch answer 429
     * delivery_rate_limited.
     */
    readonly deliveryRowsPerMinutePerTenant: number;
  };
  /** The schema registry's bounds and cache (docs/schemas.md, docs/quotas.md). */
  readonly schemas: {
    /** Event types with a registered schema per tenant. */
    readonly maxTypesPerTenant: number;
    /** Versions kept per type. */
    readonly maxVersionsPerType: number;
    /** Largest schema, bytes of its JSON. */
    readonly maxBytes: number;
    /** Deepest nesting of a schema's JSON. */
    readonly maxDepth: number;
    /** Most subschemas (objects) in one schema. */
    readonly maxNodes: number;
    /** Longest compile a schema may take, ms; a slower one is refused. */
    readonly maxCompileMs: number;
    /** Longest a process uses a tenant's cached schemas without re-reading them from the database, ms. */
    readonly cacheTtlMs: number;
    /** Tenants whose compiled schemas a process keeps (least recently used dropped). */
    readonly cacheTenants: number;
  };
  readonly retention: {
    /** Age after acknowledgement at which an event is deleted, seconds. */
    readonly acknowledgedSeconds: number;
    /** Age after death at which a dead event is deleted, seconds. */
    readonly deadSeconds: number;
    /** Optional hard cap on the age of pending/leased events, seconds; unset = never expire them. */
    readonly maxEventAgeSeconds: number | undefined;
    /** Rows per expiry statement. */
    readonly batchSize: number;
    /** How often expiry runs, seconds. */
    readonly intervalSeconds: number;
    /** Least pause after each full expiry batch, ms, to leave room for live traffic. */
    readonly pauseMs: number;
    /** Largest share of time an expiry run spends deleting (0–1]; the pacer's ceiling. EXPIRY_MAX_DUTY, default 0.5. */
    readonly maxDuty: number;
    /** The pacer's floor: least share of time spent deleting while there is work. EXPIRY_MIN_DUTY, default 0.02. */
    readonly minDuty: number;
    /** The pacer's smallest batch (and its starting one). */
    readonly minBatchSize: number;
    /** Longest rest after one batch, ms. */
    readonly maxRestMs: number;
    /** Probe slowdown during a batch over a rest above which the pacer backs off. EXPIRY_INTERFERENCE_TOLERANCE, default 1.25. */
    readonly interferenceTolerance: number;
    /** Everything due should be deleted within this long; the pacer never goes slower than that needs. */
    readonly drainSeconds: number;
    /** Seconds without a completed expiry run after which the scheduler's /readyz fails (expiry overdue). */
    readonly overdueSeconds: number;
  };
  /** The time partitions of events and deliveries (docs/scheduler.md#retention). */
  readonly partitions: {
    /** Width of a new partition, seconds (PARTITION_INTERVAL_SECONDS). */
    readonly intervalSeconds: number;
    /** Partitions kept created beyond the current one (PARTITIONS_AHEAD). */
    readonly ahead: number;
  };
  /** How long a looked-up API key is trusted before it is read again, ms. */
  readonly apiKeyCacheMs: number;
  /** pino level. */
  readonly logLevel: string;
  /**
   * Aurora Data API target for `triggers migrate` from outside the VPC: DATA_API_RESOURCE_ARN,
   * DATA_API_SECRET_ARN and DATA_API_DATABASE (all three, or none).
   */
  readonly dataApi: { readonly resourceArn: string; readonly secretArn: string; readonly database: string } | undefined;
}

const DAY = 86_400;

/** One environment variable: its schema, its default (none: unset stays unset) and what it means. */
interface Variable {
  readonly schema: Joi.Schema;
  readonly default?: string | number | boolean;
  readonly doc: string;
}

/**
 * Every environment variable, declared once: name, Joi schema, default and meaning. The schema
 * below and the configuration table of docs/operations.md (configurationTable) are derived from it;
 * test/unit/config-docs.test.ts fails when that table differs.
 */
export const VARIABLES = {
  HOST: { schema: Joi.string(), default: "127.0.0.1", doc: "API bind address" },
  PORT: { schema: Joi.number().integer().min(0).max(65535), default: 3000, doc: "API port" },
  METRICS_PORT: { schema: Joi.number().integer().min(0).max(65535), default: 9464, doc: "`/healthz`, `/readyz` and `/metrics` of every long-running role (api included); `healthcheck` probes it" },
  BACKLOG_TOP_N: { schema: Joi.number().integer().min(0).max(50), default: 10, doc: "subscriptions with the largest backlog the API role exports as `triggers_subscription_backlog` (one grouped query a minute); `0` turns it off" },
  TRIGGERS_DATA_DIR: { schema: Joi.string(), default: ".triggers", doc: "embedded state: PGlite data, dev API key" },
  NODE_ENV: { schema: Joi.string(), doc: "`production` (the image sets it): `migrate` and `keys` never use the embedded database" },
  DATABASE_URL: { schema: Joi.string().uri({ scheme: ["postgres", "postgresql"] }), doc: "Postgres URL; `?schema=name` selects a schema (`migrate` creates it); `?sslmode=` see [TLS to RDS](deploy.md#tls-to-rds). `api`, `worker`, `scheduler` refuse to start without it; unset: embedded PGlite (`start` only)" },
  DATABASE_IAM_AUTH: { schema: Joi.boolean().truthy("1").falsy("0", ""), default: false, doc: "`true`: log in with RDS IAM tokens (`@aws-sdk/rds-signer`, one per new connection, cached 10 min)" },
  DATABASE_PASSWORD_SECRET_ARN: { schema: Joi.string().pattern(/^arn:aws[a-z-]*:secretsmanager:/, "Secrets Manager ARN"), doc: "Secrets Manager secret (JSON with `password`, e.g. the RDS-managed master secret), cached, re-read after a refused login" },
  DATABASE_PASSWORD_FILE: { schema: Joi.string(), doc: "a file holding the password, cached, re-read after a refused login (at most one of this and `DATABASE_PASSWORD_SECRET_ARN`)" },
  SQS_ENDPOINT: { schema: Joi.string().uri({ scheme: ["http", "https"] }), doc: "an SQS-compatible emulator; with no queue URL the queue and DLQ are created there" },
  SQS_QUEUE_URL: { schema: Joi.string().uri({ scheme: ["http", "https"] }), doc: "the real queue; `api`, `worker`, `scheduler` refuse to start without it or `SQS_ENDPOINT`" },
  SQS_DLQ_URL: { schema: Joi.string().uri({ scheme: ["http", "https"] }), doc: "its dead-letter queue, for readiness and depth metrics (needs `SQS_QUEUE_URL`)" },
  SQS_QUEUE_NAME: { schema: Joi.string().pattern(/^[A-Za-z0-9_-]{1,80}$/), default: "triggers-events", doc: "queue name when this service creates it" },
  AWS_REGION: { schema: Joi.string(), default: "us-east-1", doc: "AWS region" },
  SQS_MAX_RECEIVE_COUNT: { schema: Joi.number().integer().min(1).max(1000), default: 5, doc: "receives before a message goes to the DLQ (queues this service creates)" },
  SQS_SEND_LINGER_MS: { schema: Joi.number().min(0).max(50), default: 2, doc: "while a `SendMessageBatch` is in flight, longest a send waits to share the next one" },
  SQS_SEND_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(60_000), default: 5000, doc: "deadline of a `SendMessageBatch`; past it its requests answer 503 + `Retry-After`" },
  SQS_CONNECT_TIMEOUT_MS: { schema: Joi.number().integer().min(50).max(60_000), default: 1000, doc: "per-attempt connect timeout of SQS calls, ms" },
  SQS_REQUEST_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(60_000), default: 2000, doc: "per-attempt socket-silence timeout of SQS calls, ms (receives add `WORKER_WAIT_SECONDS`)" },
  SQS_MAX_CONCURRENT_SENDS: { schema: Joi.number().integer().min(1).max(10_000), default: 64, doc: "`SendMessageBatch` calls in flight per process; past it a send answers 503 at once" },
  REDIS_URL: { schema: Joi.string().uri({ scheme: ["redis", "rediss"] }), doc: "rate limits, idempotency fast path, receipts, BullMQ; unset: in-process fallbacks" },
  REDIS_PREFIX: { schema: Joi.string().pattern(/^[A-Za-z0-9_.:-]{1,64}$/), default: "triggers", doc: "prefix of every Redis key and BullMQ queue of this deployment" },
  REDIS_COMMAND_TIMEOUT_MS: { schema: Joi.number().integer().min(10).max(60_000), default: 500, doc: "deadline of each Redis command, ms; no offline queue: while disconnected a command fails at once" },
  REDIS_CONNECT_TIMEOUT_MS: { schema: Joi.number().integer().min(10).max(60_000), default: 2000, doc: "deadline of each Redis (re)connection, ms" },
  DB_QUERY_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(600_000), default: 5000, doc: "deadline of every Postgres statement: server `statement_timeout` and client `query_timeout` (migrations exempt)" },
  DB_CONNECT_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(60_000), default: 3000, doc: "longest wait for a pooled or new Postgres connection" },
  HTTP_REQUEST_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(600_000), default: 30_000, doc: "slow clients: the whole request with its body must arrive within this, ms (408, connection closed)" },
  HTTP_HEADERS_TIMEOUT_MS: { schema: Joi.number().integer().min(100).max(600_000), default: 10_000, doc: "slow clients: the headers must arrive within this, ms (408, connection closed)" },
  HTTP_KEEPALIVE_TIMEOUT_MS: { schema: Joi.number().integer().min(0).max(600_000), default: 65_000, doc: "idle keep-alive connections close after this (longer than the ALB's idle timeout)" },
  HTTP_MAX_CONNECTIONS: { schema: Joi.number().integer().min(1).max(1_000_000), default: 4096, doc: "open connections per API process" },
  HTTP_TRUST_PROXY: { schema: Joi.boolean(), default: false, doc: "client address from `X-Forwarded-For` (last hop); set behind the ALB" },
  AUTH_FAILURES_PER_MINUTE: { schema: Joi.number().integer().min(1).max(1_000_000), default: 60, doc: "failed authentications per client address per minute before unknown keys from it get 429" },
  WORKER_RECEIVERS: { schema: Joi.number().integer().min(1).max(64), default: 16, doc: "concurrent long polls per worker process (more receivers, bigger group commits)" },
  WORKER_WAIT_SECONDS: { schema: Joi.number().integer().min(1).max(20), default: 20, doc: "long-poll wait of the worker's receives, seconds (1–20)" },
  WORKER_VISIBILITY_SECONDS: { schema: Joi.number().integer().min(1).max(43200), default: 60, doc: "visibility timeout of received messages, seconds" },
  MAX_DELIVERIES: { schema: Joi.number().integer().min(1).max(1000), default: 10, doc: "deliveries after which an event is dead" },
  INBOX_VISIBILITY_SECONDS: { schema: Joi.number().integer().min(1).max(3600), default: 30, doc: "default lease, seconds (at most 3600: the lease maximum)" },
  LONG_POLLS_PER_KEY: { schema: Joi.number().integer().min(1).max(100_000), default: 100, doc: "concurrent long polls (GET /inbox with wait_seconds > 0) per API key, per API process (at most the tenant quota); more answer 429" },
  LONG_POLLS_PER_TENANT: { schema: Joi.number().integer().min(1).max(100_000), default: 250, doc: "concurrent long polls per tenant (all its keys), per API process; more answer 429" },
  LONG_POLL_RECHECK_MS: { schema: Joi.number().integer().min(100).max(600_000), default: 5000, doc: "interval of the shared safety re-check of waiting long polls (one indexed existence check per waited-on subscription and filter), ms" },
  MAX_EVENT_BYTES: { schema: Joi.number().integer().min(1024).max(1_048_576), default: 262_144, doc: "largest request body, bytes" },
  RATE_LIMIT_PER_MINUTE: { schema: Joi.number().integer().min(1), default: 6000, doc: "default requests per minute per API key" },
  IDEMPOTENCY_CLAIMS_PER_TENANT: { schema: Joi.number().integer().min(0), default: 100_000, doc: "idempotency claims one tenant may make in Redis per hour (each ≈ 180–450 B, kept 1 h); past it the tenant's new keys are claimed in process memory only (sizing in [quotas.md](quotas.md))" },
  IDEMPOTENCY_CLAIMS_TOTAL: { schema: Joi.number().integer().min(0), default: 500_000, doc: "idempotency claims all tenants together may make in Redis per hour; past it every tenant's new keys are claimed in process memory only (sizing in [quotas.md](quotas.md))" },
  MAX_SUBSCRIPTIONS_PER_TENANT: { schema: Joi.number().integer().min(1).max(10_000), default: 100, doc: "subscriptions a tenant may have at once, `default` included (so also the most deliveries one event fans out to)" },
  DELIVERY_ROWS_PER_MINUTE_PER_TENANT: { schema: Joi.number().integer().min(1), default: 1_200_000, doc: "rows a tenant's accepted events may write per minute, across API processes (Redis; per API process while Redis is down): each event costs 1 + its tenant's live subscriptions (cached with the API key, API_KEY_CACHE_MS). Past it POST /events and /events/batch answer 429 `delivery_rate_limited` (sizing in [quotas.md](quotas.md))" },
  SCHEMA_MAX_TYPES_PER_TENANT: { schema: Joi.number().integer().min(1).max(100_000), default: 100, doc: "event types with a registered schema per tenant; more answer 409 `schema_quota_exceeded` ([schemas.md](schemas.md))" },
  SCHEMA_MAX_VERSIONS_PER_TYPE: { schema: Joi.number().integer().min(1).max(10_000), default: 50, doc: "schema versions kept per event type; more answer 409 `schema_quota_exceeded`" },
  SCHEMA_MAX_BYTES: { schema: Joi.number().integer().min(256).max(1_048_576), default: 65_536, doc: "largest schema, bytes of its JSON (400 `schema_limit_exceeded`)" },
  SCHEMA_MAX_DEPTH: { schema: Joi.number().integer().min(2).max(256), default: 32, doc: "deepest nesting of a schema's JSON (400 `schema_limit_exceeded`)" },
  SCHEMA_MAX_NODES: { schema: Joi.number().integer().min(10).max(100_000), default: 2000, doc: "most subschemas (objects) in one schema (400 `schema_limit_exceeded`)" },
  SCHEMA_MAX_COMPILE_MS: { schema: Joi.number().integer().min(10).max(60_000), default: 500, doc: "longest compile a schema may take, ms; a slower one is refused (400 `schema_limit_exceeded`)" },
  SCHEMA_CACHE_TTL_MS: { schema: Joi.number().integer().min(0).max(600_000), default: 5000, doc: "longest an API process uses a tenant's cached schemas without re-reading them from the database, ms" },
  SCHEMA_CACHE_TENANTS: { schema: Joi.number().integer().min(1).max(1_000_000), default: 1000, doc: "tenants whose compiled schemas an API process keeps (least recently used dropped)" },
  ACK_RETENTION_SECONDS: { schema: Joi.number().integer().min(0), default: 7 * DAY, doc: "age after acknowledgement at which an event is deleted, seconds ([scheduler.md](scheduler.md))" },
  DEAD_RETENTION_SECONDS: { schema: Joi.number().integer().min(0), default: 14 * DAY, doc: "age after death at which a dead event is deleted, seconds" },
  MAX_EVENT_AGE_SECONDS: { schema: Joi.number().integer().min(60), doc: "optional hard cap on the age of pending/leased events, seconds; unset = never expire them" },
  EXPIRY_BATCH_SIZE: { schema: Joi.number().integer().min(1).max(100_000), default: 5000, doc: "rows per expiry statement" },
  EXPIRY_INTERVAL_SECONDS: { schema: Joi.number().integer().min(1), default: 60, doc: "how often expiry runs, seconds" },
  EXPIRY_PAUSE_MS: { schema: Joi.number().integer().min(0).max(10_000), default: 25, doc: "least pause after each full expiry batch, ms, to leave room for live traffic" },
  EXPIRY_MAX_DUTY: { schema: Joi.number().greater(0).max(1), default: 0.5, doc: "largest share of time an expiry run spends deleting (0–1]; the pacer's ceiling" },
  EXPIRY_MIN_DUTY: { schema: Joi.number().greater(0).max(1), default: 0.02, doc: "the pacer's floor: least share of time spent deleting while there is work" },
  EXPIRY_MIN_BATCH_SIZE: { schema: Joi.number().integer().min(1).max(100_000), default: 250, doc: "the pacer's smallest batch (and its starting one)" },
  EXPIRY_MAX_REST_MS: { schema: Joi.number().integer().min(0).max(60_000), default: 2000, doc: "longest rest of expiry after one batch, ms ([scheduler.md#pacing](scheduler.md#pacing))" },
  EXPIRY_INTERFERENCE_TOLERANCE: { schema: Joi.number().greater(1).max(10), default: 1.25, doc: "probe slowdown during a batch over a rest above which the pacer backs off" },
  EXPIRY_DRAIN_SECONDS: { schema: Joi.number().integer().min(1), default: 3600, doc: "everything due should be deleted within this long; the pacer never goes slower than that needs" },
  EXPIRY_OVERDUE_SECONDS: { schema: Joi.number().integer().min(1), default: 600, doc: "seconds without a completed expiry run after which the scheduler's /readyz fails (expiry overdue)" },
  PARTITION_INTERVAL_SECONDS: { schema: Joi.number().integer().min(60).max(366 * DAY), default: DAY, doc: "width of a new partition of events and deliveries, seconds; retention drops whole partitions ([scheduler.md#retention](scheduler.md#retention))" },
  PARTITIONS_AHEAD: { schema: Joi.number().integer().min(1).max(100), default: 3, doc: "partitions kept created beyond the current one (by the worker at start and by every expiry run)" },
  API_KEY_CACHE_MS: { schema: Joi.number().integer().min(0).max(5000), default: 2000, doc: "how long a key lookup is trusted, ms (≤ 5000: a revoked key stops working within that)" },
  LOG_LEVEL: { schema: Joi.string().valid("fatal", "error", "warn", "info", "debug", "trace", "silent"), default: "info", doc: "pino level" },
  DATA_API_RESOURCE_ARN: { schema: Joi.string().pattern(/^arn:aws[a-z-]*:rds:/, "RDS cluster ARN"), doc: "Aurora cluster ARN: run `migrate` through the Aurora Data API (with `DATA_API_SECRET_ARN` and `DATA_API_DATABASE`: all three or none)" },
  DATA_API_SECRET_ARN: { schema: Joi.string().pattern(/^arn:aws[a-z-]*:secretsmanager:/, "Secrets Manager ARN"), doc: "Secrets Manager ARN of the Data API's credentials" },
  DATA_API_DATABASE: { schema: Joi.string().pattern(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/), doc: "database name for the Data API" },
} as const satisfies Record<string, Variable>;

/** The name of a declared variable: reading an undeclared one does not typecheck. */
export type VariableName = keyof typeof VARIABLES;

const envSchema = Joi.object(
  Object.fromEntries(Object.entries(VARIABLES).map(([name, v]: [string, Variable]) => [name, v.default === undefined ? v.schema : v.schema.default(v.default)])),
)
  .and("DATA_API_RESOURCE_ARN", "DATA_API_SECRET_ARN", "DATA_API_DATABASE")
  .oxor("DATABASE_PASSWORD_SECRET_ARN", "DATABASE_PASSWORD_FILE")
  // An SQS_ENDPOINT without a queue URL would silently fall back to nothing sensible.
  .with("SQS_DLQ_URL", "SQS_QUEUE_URL")
  .unknown(true);

export class ConfigError extends Error {}

/** Validates an environment into a frozen Config; throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { value, error } = envSchema.validate(env, { abortEarly: false, convert: true });
  if (error) {
    throw new ConfigError(`invalid environment: ${error.details.map((d) => d.message).join("; ")}`);
  }
  const v = value as Record<string, unknown>;
  const str = (k: VariableName) => v[k] as string;
  const opt = (k: VariableName) => (v[k] === undefined || v[k] === "" ? undefined : (v[k] as string));
  const num = (k: VariableName) => v[k] as number;
  const bool = (k: VariableName) => v[k] === true;
  const config: Config = {
    host: str("HOST"),
    port: num("PORT"),
    metricsPort: num("METRICS_PORT"),
    backlogTopN: num("BACKLOG_TOP_N"),
    dataDir: resolve(str("TRIGGERS_DATA_DIR")),
    dataDirExplicit: env["TRIGGERS_DATA_DIR" satisfies VariableName] !== undefined && env.TRIGGERS_DATA_DIR !== "",
    production: opt("NODE_ENV") === "production",
    databaseUrl: opt("DATABASE_URL"),
    databaseAuth: {
      iam: bool("DATABASE_IAM_AUTH"),
      secretArn: opt("DATABASE_PASSWORD_SECRET_ARN"),
      passwordFile: opt("DATABASE_PASSWORD_FILE"),
    },
    sqs: {
      endpoint: opt("SQS_ENDPOINT"),
      queueUrl: opt("SQS_QUEUE_URL"),
      dlqUrl: opt("SQS_DLQ_URL"),
      queueName: str("SQS_QUEUE_NAME"),
      region: str("AWS_REGION"),
      maxReceiveCount: num("SQS_MAX_RECEIVE_COUNT"),
      sendLingerMs: num("SQS_SEND_LINGER_MS"),
      sendTimeoutMs: num("SQS_SEND_TIMEOUT_MS"),
      connectTimeoutMs: num("SQS_CONNECT_TIMEOUT_MS"),
      requestTimeoutMs: num("SQS_REQUEST_TIMEOUT_MS"),
      maxConcurrentSends: num("SQS_MAX_CONCURRENT_SENDS"),
    },
    redisUrl: opt("REDIS_URL"),
    redisPrefix: str("REDIS_PREFIX"),
    redisCommandTimeoutMs: num("REDIS_COMMAND_TIMEOUT_MS"),
    redisConnectTimeoutMs: num("REDIS_CONNECT_TIMEOUT_MS"),
    db: { queryTimeoutMs: num("DB_QUERY_TIMEOUT_MS"), connectTimeoutMs: num("DB_CONNECT_TIMEOUT_MS") },
    http: {
      requestTimeoutMs: num("HTTP_REQUEST_TIMEOUT_MS"),
      headersTimeoutMs: num("HTTP_HEADERS_TIMEOUT_MS"),
      keepAliveTimeoutMs: num("HTTP_KEEPALIVE_TIMEOUT_MS"),
      maxConnections: num("HTTP_MAX_CONNECTIONS"),
      trustProxy: bool("HTTP_TRUST_PROXY"),
    },
    authFailuresPerMinute: num("AUTH_FAILURES_PER_MINUTE"),
    worker: {
      receivers: num("WORKER_RECEIVERS"),
      waitSeconds: num("WORKER_WAIT_SECONDS"),
      visibilitySeconds: num("WORKER_VISIBILITY_SECONDS"),
    },
    inbox: {
      maxDeliveries: num("MAX_DELIVERIES"),
      defaultVisibilitySeconds: num("INBOX_VISIBILITY_SECONDS"),
      longPollsPerKey: Math.min(num("LONG_POLLS_PER_KEY"), num("LONG_POLLS_PER_TENANT")),
      longPollsPerTenant: num("LONG_POLLS_PER_TENANT"),
      longPollRecheckMs: num("LONG_POLL_RECHECK_MS"),
    },
    limits: {
      maxEventBytes: num("MAX_EVENT_BYTES"),
      rateLimitPerMinute: num("RATE_LIMIT_PER_MINUTE"),
      idempotencyClaimsPerTenant: num("IDEMPOTENCY_CLAIMS_PER_TENANT"),
      idempotencyClaimsTotal: num("IDEMPOTENCY_CLAIMS_TOTAL"),
      maxSubscriptionsPerTenant: num("MAX_SUBSCRIPTIONS_PER_TENANT"),
      deliveryRowsPerMinutePerTenant: num("DELIVERY_ROWS_PER_MINUTE_PER_TENANT"),
    },
    schemas: {
      maxTypesPerTenant: num("SCHEMA_MAX_TYPES_PER_TENANT"),
      maxVersionsPerType: num("SCHEMA_MAX_VERSIONS_PER_TYPE"),
      maxBytes: num("SCHEMA_MAX_BYTES"),
      maxDepth: num("SCHEMA_MAX_DEPTH"),
      maxNodes: num("SCHEMA_MAX_NODES"),
      maxCompileMs: num("SCHEMA_MAX_COMPILE_MS"),
      cacheTtlMs: num("SCHEMA_CACHE_TTL_MS"),
      cacheTenants: num("SCHEMA_CACHE_TENANTS"),
    },
    retention: {
      acknowledgedSeconds: num("ACK_RETENTION_SECONDS"),
      deadSeconds: num("DEAD_RETENTION_SECONDS"),
      maxEventAgeSeconds: v["MAX_EVENT_AGE_SECONDS" satisfies VariableName] === undefined ? undefined : num("MAX_EVENT_AGE_SECONDS"),
      batchSize: num("EXPIRY_BATCH_SIZE"),
      intervalSeconds: num("EXPIRY_INTERVAL_SECONDS"),
      pauseMs: num("EXPIRY_PAUSE_MS"),
      maxDuty: num("EXPIRY_MAX_DUTY"),
      minDuty: Math.min(num("EXPIRY_MIN_DUTY"), num("EXPIRY_MAX_DUTY")),
      minBatchSize: Math.min(num("EXPIRY_MIN_BATCH_SIZE"), num("EXPIRY_BATCH_SIZE")),
      maxRestMs: Math.max(num("EXPIRY_MAX_REST_MS"), num("EXPIRY_PAUSE_MS")),
      interferenceTolerance: num("EXPIRY_INTERFERENCE_TOLERANCE"),
      drainSeconds: num("EXPIRY_DRAIN_SECONDS"),
      overdueSeconds: num("EXPIRY_OVERDUE_SECONDS"),
    },
    partitions: {
      intervalSeconds: num("PARTITION_INTERVAL_SECONDS"),
      ahead: num("PARTITIONS_AHEAD"),
    },
    apiKeyCacheMs: num("API_KEY_CACHE_MS"),
    logLevel: str("LOG_LEVEL"),
    dataApi: opt("DATA_API_RESOURCE_ARN")
      ? { resourceArn: str("DATA_API_RESOURCE_ARN"), secretArn: str("DATA_API_SECRET_ARN"), database: str("DATA_API_DATABASE") }
      : undefined,
  };
  return deepFreeze(config);
}

/** The configuration table of docs/operations.md, one row per variable, as VARIABLES declares them. */
export function configurationTable(): string {
  const rows = Object.entries(VARIABLES).map(([name, v]: [string, Variable]) => `| \`${name}\` | ${v.default === undefined ? "—" : `\`${v.default === "" ? '""' : String(v.default)}\``} | ${v.doc} |`);
  return ["| Variable | Default | Meaning |", "|---|---|---|", ...rows].join("\n");
}

/** The long-running production roles: they never fall back to embedded parts. */
export type ServiceRole = "api" | "worker" | "scheduler";

/**
 * Throws a ConfigError naming every missing variable when a production role (api, worker,
 * scheduler) would otherwise fall back to embedded PGlite or an in-process SQS emulator: those
 * keep state in the process (or its container layer) and lose it on restart. Only `start` (the
 * all-in-one development command) uses the embedded parts.
 */
export function requireServiceDependencies(config: Config, role: ServiceRole): void {
  const missing: string[] = [];
  if (!config.databaseUrl) missing.push("DATABASE_URL (a Postgres URL)");
  if (!config.sqs.queueUrl && !config.sqs.endpoint) missing.push("SQS_QUEUE_URL (or SQS_ENDPOINT for an SQS emulator)");
  if (missing.length > 0) {
    throw new ConfigError(
      `${role} needs ${missing.join(" and ")}; it never falls back to embedded storage or an in-process queue (use \`triggers start\` for the all-in-one development setup)`,
    );
  }
}

/** The one-off commands that act on a deployment's database. */
export type DatabaseCommand = "migrate" | "keys";

/**
 * Throws a ConfigError (one line naming DATABASE_URL) when `migrate` or `keys` would otherwise fall
 * back to the embedded database: without DATABASE_URL (or, for migrate, the Aurora Data API) they
 * use it only when TRIGGERS_DATA_DIR names it explicitly, and never under NODE_ENV=production. A
 * forgotten DATABASE_URL would otherwise migrate, or create keys in, a throw-away database.
 */
export function requireCommandDatabase(config: Config, command: DatabaseCommand): void {
  if (config.databaseUrl || (command === "migrate" && config.dataApi)) return;
  if (config.dataDirExplicit && !config.production) return;
  throw new ConfigError(
    `${command} needs DATABASE_URL (a Postgres URL)${command === "migrate" ? " or DATA_API_RESOURCE_ARN" : ""}; ` +
      (config.production
        ? "under NODE_ENV=production it never uses the embedded database"
        : "it uses the embedded database only when TRIGGERS_DATA_DIR names it explicitly"),
  );
}

function deepFreeze<T extends object>(o: T): T {
  for (const value of Object.values(o)) {
    if (value && typeof value === "object") deepFreeze(value as object);
  }
  return Object.freeze(o);
}
