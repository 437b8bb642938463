/**
 * Ingest throughput: POST /events through the real API (auth, validation, rate limit on Redis,
 * receipts, log line, metrics, SendMessageBatch to the SQS emulator, 202 only after SQS confirmed)
 * against two baselines in the same run, all driven by autocannon at the same concurrency, in
 * alternating rounds (the order rotates each round), on one SQS emulator:
 *   - bare Koa answering 202 without any work;
 *   - the minimal durable pipeline (bench/minimal-pipeline.ts): Koa, body parse, an id, the same
 *     SendBatcher, 202 after SQS confirmed, no checks.
 * CPU per request is each server process's utime+stime (/proc/<pid>/stat) over its runs, divided
 * by the requests it answered. Every 202 of the API and of the minimal pipeline is checked against
 * the events on its queue.
 *   BENCH_CONNECTIONS (default 64), BENCH_SECONDS (default 10), BENCH_ROUNDS (default 2), BENCH_WARM_SECONDS (default 15, each server, before the rounds:
 *   after 5 s the minimal pipeline's first round still ran 20–32 % below its second),
 *   BENCH_LOG_LEVEL (default info), BENCH_REDIS_URL ("" = no Redis), BENCH_PROFILE_DIR (CPU profiles of the API and the minimal pipeline),
 *   BENCH_COMPARE_CLI (path to another build's dist/src/cli/main.js: its API runs as a fourth server, in the same rounds),
 *   BENCH_NODE_OPTIONS (space-separated; default: the node options of the Dockerfile's ENTRYPOINT),
 *   BENCH_COMPARE_NODE_OPTIONS (the compared API's node options; default: this checkout's, as for every server; "" = none:
 *   the same build with and without them),
 *   BENCH_SCHEMA=1 (`npm run bench:ingest-schema`: the event's type has a registered JSON Schema, so every event is
 *   validated against it at ingest and records its version)
 * Every server runs with the same node options as the image (bench/image.ts), so the baselines
 * and the API share one runtime configuration.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import autocannon from "autocannon";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { connectPostgres } from "../src/store/database";
import { createApiKey } from "../src/store/api-keys";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { createSqsClient, SqsQueue } from "../src/queue/sqs-queue";
import { decodeQueuedMessage } from "../src/domain/queued-event";
import { imageNodeOptions } from "./image";
import { benchSchema, fmt, processCpuMs, runBench } from "./support";
import { registerSchema } from "../src/store/schemas";
import { freePort, spawnAnnouncing, spawnEmulator, waitForHttp } from "../src/dev/local-services";

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const WARM_SECONDS = Number(process.env.BENCH_WARM_SECONDS ?? 15);
const WITH_SCHEMA = process.env.BENCH_SCHEMA === "1";

/** The schema of the bench's event type under BENCH_SCHEMA=1: the shape of the body below, as a producer would register it. */
const ORDER_CREATED_SCHEMA = {
  type: "object",
  required: ["order", "items"],
  additionalProperties: false,
  properties: {
    order: { type: "integer", minimum: 1 },
    items: { type: "array", minItems: 1, maxItems: 100, items: { type: "object", required: ["sku", "qty"], properties: { sku: { type: "string", pattern: "^[A-Z]+-[0-9]+$" }, qty: { type: "integer", minimum: 1 } } } },
    note: { type: "string", maxLength: 1000 },
  },
};

function run(url: string, headers: Record<string, string>, body: string, seconds = SECONDS): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url, method: "POST", headers, body, connections: CONNECTIONS, duration: seconds }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** CPU time (user + system) of a process so far, µs. */
const cpuMicros = (pid: number): number => processCpuMs(pid) * 1000;

interface Server {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly results: autocannon.Result[];
  cpu: number;
}

/** Events on a queue (drained with long visibility so nothing is counted twice) and the messages they came in. */
async function countQueued(sqs: ReturnType<typeof createSqsClient>, queueName: string): Promise<{ events: number; messages: number }> {
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
  const queue = new SqsQueue(sqs, QueueUrl!);
  const messages = (await queue.depth()).visible;
  let events = 0;
  for (;;) {
    const got = await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 300 });
    if (got.length === 0) break;
    for (const m of got) events += decodeQueuedMessage(m.body).events.length;
  }
  return { events, messages };
}

/** Space-separated node options from the environment, or undefined when `name` is not set ("" = none). */
const optionsFromEnv = (name: string): string[] | undefined => process.env[name]?.split(/\s+/).filter(Boolean);

/** The node options every server runs with: the image's (its ENTRYPOINT's), unless BENCH_NODE_OPTIONS says otherwise. */
const NODE_OPTIONS = optionsFromEnv("BENCH_NODE_OPTIONS") ?? imageNodeOptions(join(__dirname, "..", ".."));

/** node options of one server: the image's, plus a CPU profile into BENCH_PROFILE_DIR (named after it) when set. */
function nodeOptions(name: string): string[] {
  const dir = process.env.BENCH_PROFILE_DIR;
  const own = (name === "compare" ? optionsFromEnv("BENCH_COMPARE_NODE_OPTIONS") : undefined) ?? NODE_OPTIONS;
  return [...own, ...(dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [])];
}

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  const children: ChildProcess[] = [];
  try {
    await applyMigrations(db.migrator, loadMigrations());
    const key = await createApiKey(db.prisma, { tenantId: "bench", name: "bench", scopes: ["events:write"] });
    if (WITH_SCHEMA) await registerSchema(db.prisma, "bench", { type: "order.created", schema: ORDER_CREATED_SCHEMA, compatibility: "none" }, { maxTypes: 1, maxVersions: 1 }, () => []);
    const stamp = Date.now();
    const queueName = `bench-ingest-${stamp}`;
    const minimalQueue = `bench-minimal-${stamp}`;
    /** An API process of the CLI at `cli` on its own queue; METRICS_PORT 0 so two can run side by side. */
    const startApi = async (cli: string, queue: string, profileName: string): Promise<{ child: ChildProcess; port: number }> => {
      const port = await freePort();
      const child = spawn(process.execPath, [...nodeOptions(profileName), cli, "api"], {
        stdio: ["ignore", "ignore", "inherit"],
        env: {
          ...process.env,
          DATABASE_URL: schema.url,
          SQS_ENDPOINT: emulator.endpoint,
          SQS_QUEUE_NAME: queue,
          ...(process.env.BENCH_REDIS_URL === "" ? {} : { REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379" }),
          REDIS_PREFIX: `bench-${profileName}-${stamp}`,
          RATE_LIMIT_PER_MINUTE: "100000000",
          DELIVERY_ROWS_PER_MINUTE_PER_TENANT: "1000000000000",
          PORT: String(port),
          METRICS_PORT: "0",
          LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      });
      children.push(child);
      await waitForHttp(`http://127.0.0.1:${port}/readyz`);
      return { child, port };
    };
    const { child: apiChild, port: apiPort } = await startApi(join(__dirname, "..", "src", "cli", "main.js"), queueName, "api");
    // Another build's API (e.g. main before a change), measured in the same alternating rounds.
    const compareCli = process.env.BENCH_COMPARE_CLI;
    const compare = compareCli ? await startApi(compareCli, `bench-compare-${stamp}`, "compare") : undefined;
    const { child: bareChild, announced: bare } = await spawnAnnouncing<{ port: number }>([...NODE_OPTIONS, join(__dirname, "bare-koa.js")]);
    children.push(bareChild);
    const { child: minimalChild, announced: minimal } = await spawnAnnouncing<{ port: number }>([...nodeOptions("minimal"), join(__dirname, "minimal-pipeline.js")], {
      SQS_ENDPOINT: emulator.endpoint,
      SQS_QUEUE_NAME: minimalQueue,
    });
    children.push(minimalChild);

    const servers: Server[] = [
      { name: "bare Koa 202", url: `http://127.0.0.1:${bare.port}/events`, pid: bareChild.pid!, results: [], cpu: 0 },
      { name: "minimal durable pipeline", url: `http://127.0.0.1:${minimal.port}/events`, pid: minimalChild.pid!, results: [], cpu: 0 },
      { name: WITH_SCHEMA ? "API POST /events (schema)" : "API POST /events", url: `http://127.0.0.1:${apiPort}/events`, pid: apiChild.pid!, results: [], cpu: 0 },
      ...(compare ? [{ name: "API of BENCH_COMPARE_CLI", url: `http://127.0.0.1:${compare.port}/events`, pid: compare.child.pid!, results: [], cpu: 0 }] : []),
    ];
    const body = JSON.stringify({ type: "order.created", source: "bench", tags: ["bench"], payload: { order: 42, items: [{ sku: "A-1", qty: 2 }], note: "x".repeat(200) } });
    const headers = { "content-type": "application/json", authorization: `Bearer ${key.secret}` };
    // Warm every server up (JIT, connections, key cache) before measuring; warm-up 202s are on the queues too.
    const warm: Record<string, number> = {};
    for (const s of servers) warm[s.name] = (await run(s.url, headers, body, WARM_SECONDS))["2xx"];
    const emulatorCpu0 = cpuMicros(emulator.process.pid!);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < servers.length; i++) {
        const s = servers[(i + round) % servers.length]!;
        const before = cpuMicros(s.pid);
        s.results.push(await run(s.url, headers, body));
        s.cpu += cpuMicros(s.pid) - before;
      }
    }
    const emulatorCpu = cpuMicros(emulator.process.pid!) - emulatorCpu0;

    const metricsText = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metricsText)?.[1] ?? NaN);
    const meanBatch = metric("triggers_sqs_send_batch_size_sum") / metric("triggers_sqs_send_batch_size_count");
    const meanSendMs = (1000 * metric("triggers_sqs_send_seconds_sum")) / metric("triggers_sqs_send_seconds_count");
    const minimalStats = (await (await fetch(`http://127.0.0.1:${minimal.port}/__stats`)).json()) as { calls: number; events: number };
    // Every 202 must be backed by an event on the queue (the minimal pipeline's too).
    for (const c of [minimalChild, apiChild]) c.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    const sqs = createSqsClient({ region: "us-east-1", endpoint: emulator.endpoint });
    const apiQueued = await countQueued(sqs, queueName);
    const minimalQueued = await countQueued(sqs, minimalQueue);
    sqs.destroy();

    const stats = (s: Server) => {
      const ok = s.results.reduce((a, r) => a + r["2xx"], 0);
      const total = s.results.reduce((a, r) => a + r.requests.total, 0);
      const reqs = s.results.reduce((a, r) => a + r.requests.average, 0) / s.results.length;
      const p50 = s.results.map((r) => r.latency.p50);
      const p99 = s.results.map((r) => r.latency.p99);
      return { ok, total, reqs, p50, p99, non2xx: s.results.reduce((a, r) => a + r.non2xx, 0), errors: s.results.reduce((a, r) => a + r.errors, 0), cpuPerReq: s.cpu / Math.max(1, total) };
    };
    const [b, m, a, c] = servers.map(stats) as [ReturnType<typeof stats>, ReturnType<typeof stats>, ReturnType<typeof stats>, ReturnType<typeof stats> | undefined];
    const line = (name: string, s: ReturnType<typeof stats>, srv: Server) =>
      `  ${name.padEnd(26)}: ${fmt(s.reqs).padStart(7)} req/s  CPU ${fmt(s.cpuPerReq, 1).padStart(6)} µs/req  p50 ${s.p50.join("/")} ms  p99 ${s.p99.join("/")} ms  per round ${srv.results.map((r) => fmt(r.requests.average)).join(" / ")}  (2xx ${s.ok}, non-2xx ${s.non2xx}, errors ${s.errors})`;
    const apiAnswered = a.ok + warm[servers[2]!.name]!;
    const minimalAnswered = m.ok + warm[servers[1]!.name]!;
    process.stdout.write(
      [
        `bench:ingest${WITH_SCHEMA ? " (a schema on the event's type)" : ""}  connections=${CONNECTIONS} duration=${SECONDS}s rounds=${ROUNDS} (alternating) node options: ${NODE_OPTIONS.join(" ") || "none"}`,
        line("bare Koa 202", b, servers[0]!),
        line("minimal durable pipeline", m, servers[1]!),
        line(servers[2]!.name, a, servers[2]!),
        `  ratio API / minimal        : ${fmt(a.reqs / m.reqs, 2)}  (aim >= ${WITH_SCHEMA ? "0.65 with a schema" : "0.60"})   per round ${servers[2]!.results.map((r, i) => fmt(r.requests.average / servers[1]!.results[i]!.requests.average, 2)).join(" / ")}`,
        ...(c
          ? [
              line("API of BENCH_COMPARE_CLI", c, servers[3]!),
              `  ratio API / compared API   : ${fmt(a.reqs / c.reqs, 2)} req/s, ${fmt(a.cpuPerReq / c.cpuPerReq, 2)} CPU per request;  compared API / minimal: ${fmt(c.reqs / m.reqs, 2)}`,
            ]
          : []),
        `  ratio API / bare Koa       : ${fmt(a.reqs / b.reqs, 2)};  minimal / bare Koa: ${fmt(m.reqs / b.reqs, 2)}`,
        `  SQS emulator CPU           : ${fmt(emulatorCpu / Math.max(1, a.total + m.total), 1)} µs per durable request`,
        `  API: 202s ${apiAnswered} (warm-up included); events on its queue ${apiQueued.events} in ${apiQueued.messages} messages; events per SendMessageBatch ${fmt(meanBatch, 1)}, mean SendMessageBatch ${fmt(meanSendMs, 1)} ms`,
        `  minimal: 202s ${minimalAnswered}; events on its queue ${minimalQueued.events} in ${minimalQueued.messages} messages; events per SendMessageBatch ${fmt(minimalStats.events / Math.max(1, minimalStats.calls), 1)}`,
        `  every 202 backed by an event on the queue: ${apiQueued.events >= apiAnswered && minimalQueued.events >= minimalAnswered ? "yes" : "NO"}`,
        "",
      ].join("\n"),
    );
    if (apiQueued.events < apiAnswered || minimalQueued.events < minimalAnswered) process.exitCode = 1;
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await db.close();
    await schema.drop();
    emulator.stop();
  }
}

runBench(main);
