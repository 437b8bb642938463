import Joi from "joi";
import { resolve } from "node:path";

/**
 * The service's whole configuration, read from the environment once at start-up.
 * Every unset variable has a default that runs the embedded all-in-one setup.
 */
export interface Config {
  /** HTTP bind address. HOST, default 127.0.0.1. */
  readonly host: string;
  /** HTTP port of the API. PORT, default 3000. */
  readonly port: number;
  /** Port of the /metrics endpoint of worker and scheduler processes. METRICS_PORT, default 9464. */
  readonly metricsPort: number;
  /** Subscriptions with the largest backlog the API role exports as triggers_subscription_backlog (one query a minute); 0 for none. BACKLOG_TOP_N, default 10, at most 50. */
  readonly backlogTopN: number;
  /** Folder for embedded state (PGlite data, dev API key). TRIGGERS_DATA_DIR, default ./.triggers. */
  readonly dataDir: string;
  /** TRIGGERS_DATA_DIR was set (not the default): `migrate` and `keys` may then use the embedded database (requireCommandDatabase). */
  readonly dataDirExplicit: boolean;
  /** NODE_ENV=production (the image sets it): `migrate` and `keys` never use the embedded database. NODE_ENV, default unset. */
  readonly production: boolean;
  /** Postgres URL; unset means embedded PGlite in <dataDir>/pgdata. `?schema=` selects a schema. DATABASE_URL. */
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
    /** SQS endpoint override (an emulator). SQS_ENDPOINT. */
    readonly endpoint: string | undefined;
    /** Main queue URL. SQS_QUEUE_URL; unset with SQS_ENDPOINT unset means an in-process emulator. */
    readonly queueUrl: string | undefined;
    /** Dead-letter queue URL, for readiness and depth metrics. SQS_DLQ_URL. */
    readonly dlqUrl: string | undefined;
    /** Queue name used when the queue is created by this service (emulator). SQS_QUEUE_NAME, default triggers-events. */
    readonly queueName: string;
    /** AWS region. AWS_REGION, default us-east-1. */
    readonly region: string;
    /** Receives before a message moves to the DLQ (emulator queues). SQS_MAX_RECEIVE_COUNT, default 5. */
    readonly maxReceiveCount: number;
    /** While a SendMessageBatch is in flight, longest a send waits to share the next one, ms. SQS_SEND_LINGER_MS, default 2. */
    readonly sendLingerMs: number;
    /** Longest a SendMessageBatch may take before its requests answer 503, ms. SQS_SEND_TIMEOUT_MS, default 5000. */
    readonly sendTimeoutMs: number;
    /** Per-attempt HTTP timeouts of SQS calls (connect, then idle socket), ms. SQS_CONNECT_TIMEOUT_MS 1000, SQS_REQUEST_TIMEOUT_MS 2000. */
    readonly connectTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** SendMessageBatch calls in flight at most per process; past it a send answers 503 at once. SQS_MAX_CONCURRENT_SENDS, default 64. */
    readonly maxConcurrentSends: number;
  };
  /** Redis URL for rate limits, idempotency fast path and BullMQ; unset = in-process fallbacks. REDIS_URL. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and BullMQ queue of this deployment. REDIS_PREFIX, default triggers. */
  readonly redisPrefix: string;
  /** Deadline of each Redis command, ms (a late one fails and its caller degrades). REDIS_COMMAND_TIMEOUT_MS, default 500. */
  readonly redisCommandTimeoutMs: number;
  /** Longest a Redis (re)connection may take, ms. REDIS_CONNECT_TIMEOUT_MS, default 2000. */
  readonly redisConnectTimeoutMs: number;
  readonly db: {
    /** Deadline of each Postgres statement (server statement_timeout and client query_timeout), ms. DB_QUERY_TIMEOUT_MS, default 5000. */
    readonly queryTimeoutMs: number;
    /** Longest wait for a pooled or new Postgres connection, ms. DB_CONNECT_TIMEOUT_MS, default 3000. */
    readonly connectTimeoutMs: number;
  };
  readonly http: {
    /** The whole request (headers and body) must arrive within this, ms. HTTP_REQUEST_TIMEOUT_MS, default 30000. */
    readonly requestTimeoutMs: number;
    /** The request headers must arrive within this, ms. HTTP_HEADERS_TIMEOUT_MS, default 10000. */
    readonly headersTimeoutMs: number;
    /** Idle keep-alive connections are closed after this, ms. HTTP_KEEPALIVE_TIMEOUT_MS, default 65000. */
    readonly keepAliveTimeoutMs: number;
    /** Open connections per API process at most; a reserve of 16 more serve GET /healthz only (503 otherwise), past that they are closed on accept. HTTP_MAX_CONNECTIONS, default 4096. */
    readonly maxConnections: number;
    /** Take the client address from X-Forwarded-For (last hop) behind a load balancer. HTTP_TRUST_PROXY, default false. */
    readonly trustProxy: boolean;
  };
  /** Failed authentications per client address per minute before that address gets 429s for unknown keys. AUTH_FAILURES_PER_MINUTE, default 60. */
  readonly authFailuresPerMinute: number;
  readonly worker: {
    /** Concurrent long-poll receivers per worker process; more receivers mean bigger group commits. WORKER_RECEIVERS, default 16. */
    readonly receivers: number;
    /** Long-poll wait, seconds (1–20). WORKER_WAIT_SECONDS, default 20. */
    readonly waitSeconds: number;
    /** Visibility timeout of received messages, seconds. WORKER_VISIBILITY_SECONDS, default 60. */
    readonly visibilitySeconds: number;
  };
  readonly inbox: {
    /** Deliveries after which an event is dead. MAX_DELIVERIES, default 10. */
    readonly maxDeliveries: number;
    /** Default lease, seconds. INBOX_VISIBILITY_SECONDS, default 30. */
    readonly defaultVisibilitySeconds: number;
    /** Concurrent long polls (GET /inbox with wait_seconds > 0) per API key, per API process (at most the tenant quota); more answer 429. LONG_POLLS_PER_KEY, default 100. */
    readonly longPollsPerKey: number;
    /** Concurrent long polls per tenant (all its keys), per API process; more answer 429. LONG_POLLS_PER_TENANT, default 250. */
    readonly longPollsPerTenant: number;
    /** Interval of the shared safety re-check of waiting long polls (one indexed existence check per waited-on subscription and filter), ms. LONG_POLL_RECHECK_MS, default 5000. */
    readonly longPollRecheckMs: number;
  };
  readonly limits: {
    /** Largest request body, bytes. MAX_EVENT_BYTES, default 262144 (256 KiB). */
    readonly maxEventBytes: number;
    /** Default requests per minute per API key. RATE_LIMIT_PER_MINUTE, default 6000. */
    readonly rateLimitPerMinute: number;
    /**
     * Idempotency claims one tenant may make in Redis per hour (each ≈ 180–450 B, kept 1 h); past
     * it the tenant's new keys are claimed in process memory only. IDEMPOTENCY_CLAIMS_PER_TENANT,
     * default 100000 (≤ 2 h of claims live: ≈ 36–90 MB per tenant).
     */
    readonly idempotencyClaimsPerTenant: number;
    /**
     * Idempotency claims all tenants together may make in Redis per hour; past it every tenant's
     * new keys are claimed in process memory only. IDEMPOTENCY_CLAIMS_TOTAL, default 500000
     * (≤ 2 h of claims live: ≈ 180–450 MB, within the default cache.t4g.small's 1.37 GiB).
     */
    readonly idempotencyClaimsTotal: number;
    /**
     * Subscriptions a tenant may have at once, `default` included (so also the most deliveries one
     * event fans out to). MAX_SUBSCRIPTIONS_PER_TENANT, default 100.
     */
    readonly maxSubscriptionsPerTenant: number;
    /**
     * Rows a tenant's accepted events may write per minute, across API processes (Redis; per API
     * process while Redis is down): each event costs 1 + its tenant's live subscriptions (cached
     * with the API key, API_KEY_CACHE_MS). Past it POST /events and /events/batch answer 429
     * delivery_rate_limited. DELIVERY_ROWS_PER_MINUTE_PER_TENANT, default 1200000 (sizing in docs/quotas.md).
     */
    readonly deliveryRowsPerMinutePerTenant: number;
  };
  /** The schema registry's bounds and cache (docs/schemas.md, docs/quotas.md). */
  readonly schemas: {
    /** Event types with a registered schema per tenant. SCHEMA_MAX_TYPES_PER_TENANT, default 100. */
    readonly maxTypesPerTenant: number;
    /** Versions kept per type. SCHEMA_MAX_VERSIONS_PER_TYPE, default 50. */
    readonly maxVersionsPerType: number;
    /** Largest schema, bytes of its JSON. SCHEMA_MAX_BYTES, default 65536. */
    readonly maxBytes: number;
    /** Deepest nesting of a schema's JSON. SCHEMA_MAX_DEPTH, default 32. */
    readonly maxDepth: number;
    /** Most subschemas (objects) in one schema. SCHEMA_MAX_NODES, default 2000. */
    readonly maxNodes: number;
    /** Longest compile a schema may take, ms; a slower one is refused. SCHEMA_MAX_COMPILE_MS, default 500. */
    readonly maxCompileMs: number;
    /** Longest a process uses a tenant's cached schemas without re-reading them from the database, ms. SCHEMA_CACHE_TTL_MS, default 5000. */
    readonly cacheTtlMs: number;
    /** Tenants whose compiled schemas a process keeps (least recently used dropped). SCHEMA_CACHE_TENANTS, default 1000. */
    readonly cacheTenants: number;
  };
  readonly retention: {
    /** Age after acknowledgement at which an event is deleted, seconds. ACK_RETENTION_SECONDS, default 7 days. */
    readonly acknowledgedSeconds: number;
    /** Age after death at which a dead event is deleted, seconds. DEAD_RETENTION_SECONDS, default 14 days. */
    readonly deadSeconds: number;
    /** Optional hard cap on the age of pending/leased events, seconds; unset = never expire them. MAX_EVENT_AGE_SECONDS. */
    readonly maxEventAgeSeconds: number | undefined;
    /** Rows per expiry statement. EXPIRY_BATCH_SIZE, default 5000. */
    readonly batchSize: number;
    /** How often expiry runs, seconds. EXPIRY_INTERVAL_SECONDS, default 60. */
    readonly intervalSeconds: number;
    /** Least pause after each full expiry batch, ms, to leave room for live traffic. EXPIRY_PAUSE_MS, default 25. */
    readonly pauseMs: number;
    /** Largest share of time an expiry run spends deleting (0–1]; the pacer's ceiling. EXPIRY_MAX_DUTY, default 0.5. */
    readonly maxDuty: number;
    /** The pacer's floor: least share of time spent deleting while there is work. EXPIRY_MIN_DUTY, default 0.02. */
    readonly minDuty: number;
    /** The pacer's smallest batch (and its starting one). EXPIRY_MIN_BATCH_SIZE, default 250 (capped at EXPIRY_BATCH_SIZE). */
    readonly minBatchSize: number;
    /** Longest rest after one batch, ms. EXPIRY_MAX_REST_MS, default 2000. */
    readonly maxRestMs: number;
    /** Probe slowdown during a batch over a rest above which the pacer backs off. EXPIRY_INTERFERENCE_TOLERANCE, default 1.25. */
    readonly interferenceTolerance: number;
    /** Everything due should be deleted within this long; the pacer never goes slower than that needs. EXPIRY_DRAIN_SECONDS, default 3600. */
    readonly drainSeconds: number;
    /** Seconds without a completed expiry run after which the scheduler's /readyz fails (expiry overdue). EXPIRY_OVERDUE_SECONDS, default 600. */
    readonly overdueSeconds: number;
  };
  /** How long a looked-up API key is trusted before it is read again, ms. API_KEY_CACHE_MS, default 2000. */
  readonly apiKeyCacheMs: number;
  /** pino level. LOG_LEVEL, default info. */
  readonly logLevel: string;
  /**
   * Aurora Data API target for `triggers migrate` from outside the VPC: DATA_API_RESOURCE_ARN,
   * DATA_API_SECRET_ARN and DATA_API_DATABASE (all three, or none).
   */
  readonly dataApi: { readonly resourceArn: string; readonly secretArn: string; readonly database: string } | undefined;
}

const DAY = 86_400;

const envSchema = Joi.object({
  HOST: Joi.string().default("127.0.0.1"),
  PORT: Joi.number().integer().min(0).max(65535).default(3000),
  METRICS_PORT: Joi.number().integer().min(0).max(65535).default(9464),
  BACKLOG_TOP_N: Joi.number().integer().min(0).max(50).default(10),
  TRIGGERS_DATA_DIR: Joi.string().default(".triggers"),
  NODE_ENV: Joi.string(),
  DATABASE_URL: Joi.string().uri({ scheme: ["postgres", "postgresql"] }),
  DATABASE_IAM_AUTH: Joi.boolean().truthy("1").falsy("0", "").default(false),
  DATABASE_PASSWORD_SECRET_ARN: Joi.string().pattern(/^arn:aws[a-z-]*:secretsmanager:/, "Secrets Manager ARN"),
  DATABASE_PASSWORD_FILE: Joi.string(),
  SQS_ENDPOINT: Joi.string().uri({ scheme: ["http", "https"] }),
  SQS_QUEUE_URL: Joi.string().uri({ scheme: ["http", "https"] }),
  SQS_DLQ_URL: Joi.string().uri({ scheme: ["http", "https"] }),
  SQS_QUEUE_NAME: Joi.string().pattern(/^[A-Za-z0-9_-]{1,80}$/).default("triggers-events"),
  AWS_REGION: Joi.string().default("us-east-1"),
  SQS_MAX_RECEIVE_COUNT: Joi.number().integer().min(1).max(1000).default(5),
  SQS_SEND_LINGER_MS: Joi.number().min(0).max(50).default(2),
  SQS_SEND_TIMEOUT_MS: Joi.number().integer().min(100).max(60_000).default(5000),
  SQS_CONNECT_TIMEOUT_MS: Joi.number().integer().min(50).max(60_000).default(1000),
  SQS_REQUEST_TIMEOUT_MS: Joi.number().integer().min(100).max(60_000).default(2000),
  SQS_MAX_CONCURRENT_SENDS: Joi.number().integer().min(1).max(10_000).default(64),
  REDIS_URL: Joi.string().uri({ scheme: ["redis", "rediss"] }),
  REDIS_PREFIX: Joi.string().pattern(/^[A-Za-z0-9_.:-]{1,64}$/).default("triggers"),
  REDIS_COMMAND_TIMEOUT_MS: Joi.number().integer().min(10).max(60_000).default(500),
  REDIS_CONNECT_TIMEOUT_MS: Joi.number().integer().min(10).max(60_000).default(2000),
  DB_QUERY_TIMEOUT_MS: Joi.number().integer().min(100).max(600_000).default(5000),
  DB_CONNECT_TIMEOUT_MS: Joi.number().integer().min(100).max(60_000).default(3000),
  HTTP_REQUEST_TIMEOUT_MS: Joi.number().integer().min(100).max(600_000).default(30_000),
  HTTP_HEADERS_TIMEOUT_MS: Joi.number().integer().min(100).max(600_000).default(10_000),
  HTTP_KEEPALIVE_TIMEOUT_MS: Joi.number().integer().min(0).max(600_000).default(65_000),
  HTTP_MAX_CONNECTIONS: Joi.number().integer().min(1).max(1_000_000).default(4096),
  HTTP_TRUST_PROXY: Joi.boolean().default(false),
  AUTH_FAILURES_PER_MINUTE: Joi.number().integer().min(1).max(1_000_000).default(60),
  WORKER_RECEIVERS: Joi.number().integer().min(1).max(64).default(16),
  WORKER_WAIT_SECONDS: Joi.number().integer().min(0).max(20).default(20),
  WORKER_VISIBILITY_SECONDS: Joi.number().integer().min(1).max(43200).default(60),
  MAX_DELIVERIES: Joi.number().integer().min(1).max(1000).default(10),
  INBOX_VISIBILITY_SECONDS: Joi.number().integer().min(1).max(3600).default(30),
  LONG_POLLS_PER_KEY: Joi.number().integer().min(1).max(100_000).default(100),
  LONG_POLLS_PER_TENANT: Joi.number().integer().min(1).max(100_000).default(250),
  LONG_POLL_RECHECK_MS: Joi.number().integer().min(100).max(600_000).default(5000),
  MAX_EVENT_BYTES: Joi.number().integer().min(1024).max(1_048_576).default(262_144),
  RATE_LIMIT_PER_MINUTE: Joi.number().integer().min(1).default(6000),
  IDEMPOTENCY_CLAIMS_PER_TENANT: Joi.number().integer().min(0).default(100_000),
  IDEMPOTENCY_CLAIMS_TOTAL: Joi.number().integer().min(0).default(500_000),
  MAX_SUBSCRIPTIONS_PER_TENANT: Joi.number().integer().min(1).max(10_000).default(100),
  DELIVERY_ROWS_PER_MINUTE_PER_TENANT: Joi.number().integer().min(1).default(1_200_000),
  SCHEMA_MAX_TYPES_PER_TENANT: Joi.number().integer().min(1).max(100_000).default(100),
  SCHEMA_MAX_VERSIONS_PER_TYPE: Joi.number().integer().min(1).max(10_000).default(50),
  SCHEMA_MAX_BYTES: Joi.number().integer().min(256).max(1_048_576).default(65_536),
  SCHEMA_MAX_DEPTH: Joi.number().integer().min(2).max(256).default(32),
  SCHEMA_MAX_NODES: Joi.number().integer().min(10).max(100_000).default(2000),
  SCHEMA_MAX_COMPILE_MS: Joi.number().integer().min(10).max(60_000).default(500),
  SCHEMA_CACHE_TTL_MS: Joi.number().integer().min(0).max(600_000).default(5000),
  SCHEMA_CACHE_TENANTS: Joi.number().integer().min(1).max(1_000_000).default(1000),
  ACK_RETENTION_SECONDS: Joi.number().integer().min(0).default(7 * DAY),
  DEAD_RETENTION_SECONDS: Joi.number().integer().min(0).default(14 * DAY),
  MAX_EVENT_AGE_SECONDS: Joi.number().integer().min(60),
  EXPIRY_BATCH_SIZE: Joi.number().integer().min(1).max(100_000).default(5000),
  EXPIRY_INTERVAL_SECONDS: Joi.number().integer().min(1).default(60),
  EXPIRY_PAUSE_MS: Joi.number().integer().min(0).max(10_000).default(25),
  EXPIRY_MAX_DUTY: Joi.number().greater(0).max(1).default(0.5),
  EXPIRY_MIN_DUTY: Joi.number().greater(0).max(1).default(0.02),
  EXPIRY_MIN_BATCH_SIZE: Joi.number().integer().min(1).max(100_000).default(250),
  EXPIRY_MAX_REST_MS: Joi.number().integer().min(0).max(60_000).default(2000),
  EXPIRY_INTERFERENCE_TOLERANCE: Joi.number().greater(1).max(10).default(1.25),
  EXPIRY_DRAIN_SECONDS: Joi.number().integer().min(1).default(3600),
  EXPIRY_OVERDUE_SECONDS: Joi.number().integer().min(1).default(600),
  API_KEY_CACHE_MS: Joi.number().integer().min(0).max(5000).default(2000),
  LOG_LEVEL: Joi.string().valid("fatal", "error", "warn", "info", "debug", "trace", "silent").default("info"),
  DATA_API_RESOURCE_ARN: Joi.string().pattern(/^arn:aws[a-z-]*:rds:/, "RDS cluster ARN"),
  DATA_API_SECRET_ARN: Joi.string().pattern(/^arn:aws[a-z-]*:secretsmanager:/, "Secrets Manager ARN"),
  DATA_API_DATABASE: Joi.string().pattern(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/),
})
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
  const str = (k: string) => v[k] as string;
  const opt = (k: string) => (v[k] === undefined || v[k] === "" ? undefined : (v[k] as string));
  const num = (k: string) => v[k] as number;
  const config: Config = {
    host: str("HOST"),
    port: num("PORT"),
    metricsPort: num("METRICS_PORT"),
    backlogTopN: num("BACKLOG_TOP_N"),
    dataDir: resolve(str("TRIGGERS_DATA_DIR")),
    dataDirExplicit: env.TRIGGERS_DATA_DIR !== undefined && env.TRIGGERS_DATA_DIR !== "",
    production: v.NODE_ENV === "production",
    databaseUrl: opt("DATABASE_URL"),
    databaseAuth: {
      iam: v.DATABASE_IAM_AUTH === true,
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
      trustProxy: v.HTTP_TRUST_PROXY as boolean,
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
      maxEventAgeSeconds: v.MAX_EVENT_AGE_SECONDS === undefined ? undefined : num("MAX_EVENT_AGE_SECONDS"),
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
    apiKeyCacheMs: num("API_KEY_CACHE_MS"),
    logLevel: str("LOG_LEVEL"),
    dataApi: opt("DATA_API_RESOURCE_ARN")
      ? { resourceArn: str("DATA_API_RESOURCE_ARN"), secretArn: str("DATA_API_SECRET_ARN"), database: str("DATA_API_DATABASE") }
      : undefined,
  };
  return deepFreeze(config);
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
