import http from "node:http";
import { execSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { createSchema } from "../src/dev/local-services";
import { newEventId } from "../src/domain/ids";
import type { QueuedEvent } from "../src/domain/queued-event";

/** Local Postgres database the benchmarks use (created if missing); each run gets its own schema. */
export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/triggers_bench";

/** Creates the bench database if needed and a fresh schema; returns its URL and a drop function. */
export async function benchSchema(): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const u = new URL(BENCH_DATABASE_URL);
  const dbName = u.pathname.slice(1);
  const adminUrl = new URL(BENCH_DATABASE_URL);
  adminUrl.pathname = "/postgres";
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  if ((await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [dbName])).rowCount === 0) {
    await admin.query(`CREATE DATABASE "${dbName}"`);
  }
  await admin.end();
  return createSchema(BENCH_DATABASE_URL, `bench_${randomBytes(4).toString("hex")}`);
}

/** Percentile of a list of numbers (p in 0–100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `n` accepted events as the worker stores them: 8 tenants, ~300-byte payloads. */
export function benchEvents(n: number): QueuedEvent[] {
  const receivedAt = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    v: 1 as const,
    id: newEventId(),
    tenant_id: `tenant-${i % 8}`,
    type: "order.created",
    source: "bench",
    payload: { order: i, items: [{ sku: "A-1", qty: 2 }], note: "x".repeat(200) },
    tags: ["bench"],
    occurred_at: null,
    idempotency_key: null,
    body_hash: "0".repeat(64),
    received_at: receivedAt,
  }));
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * A keep-alive HTTP client for load generators. The global fetch costs several times the CPU of
 * node:http per request, and a load generator shares this machine's cores with the service it
 * measures, so the benches that drive a steady rate use this one.
 */
export function httpClient(base: string, maxSockets = 256): { request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<HttpAnswer>; close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const url = new URL(base);
  return {
    request(method, path, headers, body) {
      return new Promise<HttpAnswer>((resolve, reject) => {
        const req = http.request(
          { agent, host: url.hostname, port: url.port, method, path, headers: body === undefined ? headers : { ...headers, "content-length": Buffer.byteLength(body) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
            res.on("error", reject);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** Runs a bench's entry point; a failure prints its error and exits non-zero. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

const CLOCK_TICKS = Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;

/** CPU-milliseconds (user + system) of a /proc stat line: after the command, state is field 3, utime 14, stime 15 (1-based over the whole line). */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU-milliseconds a process has used so far (Linux: /proc/<pid>/stat). */
export function processCpuMs(pid: number): number {
  return statCpuMs(readFileSync(`/proc/${pid}/stat`, "utf8"));
}

/** CPU-milliseconds the calling thread has used (Linux: /proc/thread-self). */
export function threadCpuMs(): number {
  return statCpuMs(readFileSync("/proc/thread-self/stat", "utf8"));
}

/**
 * CPU-milliseconds (user + system) used so far by every process of the local Postgres server
 * (each /proc/<pid> whose command is `postgres`). A difference of two readings is the server's
 * CPU over that interval, as long as its backends live through it (pooled connections do).
 */
export function postgresCpuMs(): number {
  let ms = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres") ms += statCpuMs(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ms;
}

/**
 * The server's WAL insert position, in bytes: a difference of two readings is the WAL written between them (by every database).
 * Given a URL it connects for the one reading; given a connected client (for readings taken close together, where a
 * connection's set-up would widen the window) it reads on that client.
 */
export async function walPosition(from: string | Client): Promise<bigint> {
  const read = async (client: Client) => {
    const { rows } = await client.query<{ bytes: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text AS bytes");
    return BigInt(rows[0]!.bytes);
  };
  if (typeof from !== "string") return read(from);
  const client = new Client({ connectionString: from });
  await client.connect();
  try {
    return await read(client);
  } finally {
    await client.end();
  }
}
