import { spawn, type ChildProcess } from "node:child_process";
import { Writable } from "node:stream";
import { loadConfig } from "../../src/config";
import { createQueues } from "../../src/queue/create-queues";
import { createSqsClient, SqsQueue } from "../../src/queue/sqs-queue";
import { connectPostgres, type Database } from "../../src/store/database";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { createApiKey, SCOPES } from "../../src/store/api-keys";
import { CLI, TEST_REDIS_URL } from "../helpers/env";
import { createTestSchema, sqsEndpoint, uniqueName } from "../helpers/harness";
import { TcpProxy } from "../helpers/tcp-proxy";
import { freePort } from "../../src/dev/local-services";
import { deadline as scaled } from "../helpers/deadlines";

/**
 * The run's time factor (test/helpers/deadlines.ts): time limits of fault tests that measure a
 * recovery are multiplied by it, never the waits of the product.
 */
export { TIME_FACTOR } from "../helpers/deadlines";

/** Short dependency deadlines so a fault scenario takes seconds; the defaults are in docs/operations.md. */
export const FAULT_DEADLINES = {
  DB_QUERY_TIMEOUT_MS: "1500",
  DB_CONNECT_TIMEOUT_MS: "1000",
  REDIS_COMMAND_TIMEOUT_MS: "300",
  REDIS_CONNECT_TIMEOUT_MS: "1000",
  SQS_SEND_TIMEOUT_MS: "1500",
  SQS_REQUEST_TIMEOUT_MS: "700",
  SQS_CONNECT_TIMEOUT_MS: "500",
  API_KEY_CACHE_MS: "1000",
} as const;

export interface RoleProcess {
  readonly role: string;
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  readonly output: string[];
  readonly exited: Promise<number | null>;
}

/**
 * A fault-injection setup: its own Postgres schema, SQS queue (+DLQ) and Redis prefix, with a
 * TcpProxy in front of Postgres, Redis and the SQS emulator. Roles run as real processes of the
 * built CLI talking through the proxies; every process and proxy is stopped by `close()`.
 */
export class FaultEnv {
  readonly processes = new Set<RoleProcess>();
  /** Every process this setup started, running or not (a role that exited still has its output here). */
  readonly spawned: RoleProcess[] = [];
  db!: Database;
  queue!: SqsQueue;
  dlq!: SqsQueue;
  key!: string;
  proxies!: { pg: TcpProxy; redis: TcpProxy; sqs: TcpProxy };
  private dropSchema!: () => Promise<void>;
  private schemaUrl!: string;
  readonly queueName = uniqueName("fq");
  readonly prefix = uniqueName("fault");

  /** `redisUrl`: the Redis behind the proxy (default the shared one; a private server for tests that flush it). */
  constructor(private readonly opts: { maxReceiveCount?: number; env?: Record<string, string>; redisUrl?: string } = {}) {}

  async start(): Promise<this> {
    const schema = await createTestSchema();
    this.dropSchema = schema.drop;
    this.schemaUrl = schema.url;
    this.db = connectPostgres(schema.url, { poolSize: 4 });
    await applyMigrations(this.db.migrator, loadMigrations());
    this.key = (await createApiKey(this.db.prisma, { tenantId: "faults", name: "faults", scopes: [...SCOPES] })).secret;
    const endpoint = sqsEndpoint();
    const sqs = createSqsClient({ region: "us-east-1", endpoint });
    const { queueUrl, dlqUrl } = await createQueues(sqs, { name: this.queueName, maxReceiveCount: this.opts.maxReceiveCount ?? 5 });
    this.queue = new SqsQueue(sqs, queueUrl);
    this.dlq = new SqsQueue(sqs, dlqUrl);
    this.proxies = {
      pg: await TcpProxy.forUrl(schema.url).start(),
      redis: await TcpProxy.forUrl(this.opts.redisUrl ?? TEST_REDIS_URL).start(),
      sqs: await TcpProxy.forUrl(endpoint).start(),
    };
    return this;
  }

  /** The environment a role process gets: every dependency reached through its proxy. */
  env(port: number): Record<string, string> {
    const db = new URL(this.schemaUrl);
    db.hostname = "127.0.0.1";
    db.port = String(this.proxies.pg.port);
    return {
      DATABASE_URL: db.toString(),
      SQS_ENDPOINT: `http://127.0.0.1:${this.proxies.sqs.port}`,
      SQS_QUEUE_NAME: this.queueName,
      SQS_MAX_RECEIVE_COUNT: String(this.opts.maxReceiveCount ?? 5),
      REDIS_URL: `redis://127.0.0.1:${this.proxies.redis.port}`,
      REDIS_PREFIX: this.prefix,
      HOST: "127.0.0.1",
      PORT: String(port),
      METRICS_PORT: String(port),
      WORKER_WAIT_SECONDS: "1",
      WORKER_VISIBILITY_SECONDS: "5",
      RATE_LIMIT_PER_MINUTE: "100000000",
      LOG_LEVEL: "warn",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...this.opts.env,
    };
  }

  /** Starts `triggers <role>` and waits until it answers /healthz. */
  async spawn(role: "api" | "worker" | "scheduler", extraEnv: Record<string, string> = {}): Promise<RoleProcess> {
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(process.execPath, [CLI, role], {
      env: { PATH: process.env.PATH ?? "", ...this.env(port), ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const sink = new Writable({
      write(chunk, _e, cb) {
        output.push(String(chunk));
        if (output.length > 2000) output.shift();
        cb();
      },
    });
    child.stdout!.pipe(sink);
    child.stderr!.pipe(sink);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const proc: RoleProcess = { role, child, port, url: `http://127.0.0.1:${port}`, output, exited };
    this.processes.add(proc);
    this.spawned.push(proc);
    void exited.then(() => this.processes.delete(proc));
    const deadline = Date.now() + scaled(20_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${role} exited early: ${output.join("")}`);
      try {
        if ((await fetch(`${proc.url}/healthz`)).ok) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`${role} did not start: ${output.join("")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return proc;
  }

  async kill(p: RoleProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
    return p.exited;
  }

  async count(sql: string, params: unknown[] = []): Promise<number> {
    const rows = await this.db.migrator.query<{ n: string }>(sql, params);
    return Number(rows[0]!.n);
  }

  /** Waits until the queue is empty (nothing visible or in flight) and the row count stops moving. */
  async drained(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + scaled(timeoutMs);
    let last = -1;
    let stableSince = Date.now();
    for (;;) {
      const d = await this.queue.depth();
      const rows = await this.count("SELECT count(*) AS n FROM events");
      if (rows !== last) {
        last = rows;
        stableSince = Date.now();
      }
      if (d.visible + d.inFlight === 0 && Date.now() - stableSince > 1000) return;
      if (Date.now() > deadline) throw new Error(`queue not drained: ${JSON.stringify(d)}, rows ${rows}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async close(): Promise<void> {
    for (const p of [...this.processes]) await this.kill(p);
    for (const proxy of Object.values(this.proxies ?? {})) await proxy.stop();
    this.queue?.client.destroy();
    await this.db?.close();
    await this.dropSchema?.();
  }
}

/** The accounting every scenario prints and asserts. */
export interface Counts {
  posted: number;
  accepted: number;
  stored: number;
  duplicates: number;
  lost: number;
}

/** Compares the accepted ids with the rows: stored (accepted and present), duplicates (same seq twice), lost. */
export async function account(env: FaultEnv, posted: number, accepted: ReadonlySet<string>): Promise<Counts> {
  const rows = await env.db.migrator.query<{ id: string; seq: string | null }>("SELECT id, payload->>'seq' AS seq FROM events WHERE tenant_id = 'faults'");
  const ids = new Set(rows.map((r) => r.id));
  const seqs = rows.map((r) => r.seq).filter((s) => s !== null);
  const counts: Counts = {
    posted,
    accepted: accepted.size,
    stored: [...accepted].filter((id) => ids.has(id)).length,
    duplicates: seqs.length - new Set(seqs).size,
    lost: [...accepted].filter((id) => !ids.has(id)).length,
  };
  process.stdout.write(`${JSON.stringify(counts)}\n`);
  return counts;
}

export { setTimeout as sleep } from "node:timers/promises";

/** POSTs JSON, returning status, headers and parsed body (never throws on HTTP errors). */
export async function post(url: string, key: string, body: unknown, headers: Record<string, string> = {}) {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}`, ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as Record<string, unknown> | undefined };
  } catch (err) {
    return { status: 0, headers: new Headers(), body: { error: String(err), cause: String((err as { cause?: unknown }).cause ?? "") } };
  }
}

export { loadConfig };
