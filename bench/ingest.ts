/**
 * Ingest throughput: POST /events through the real API (auth, validation, rate limit on Redis,
 * SendMessageBatch to the SQS emulator, 202 only after SQS confirmed) against a bare Koa route
 * answering 202, both driven by autocannon at the same concurrency in the same run.
 *   BENCH_CONNECTIONS (default 64), BENCH_SECONDS (default 10), BENCH_LOG_LEVEL (default info)
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
import { benchSchema, fmt, freePort, runBench, spawnAnnouncing, spawnEmulator, waitForHttp } from "./support";

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

function run(url: string, headers: Record<string, string>, body: string): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url, method: "POST", headers, body, connections: CONNECTIONS, duration: SECONDS }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  const children: ChildProcess[] = [];
  try {
    await applyMigrations(db.migrator, loadMigrations());
    const key = await createApiKey(db.prisma, { tenantId: "bench", name: "bench", scopes: ["events:write"] });
    const queueName = `bench-ingest-${Date.now()}`;
    const apiPort = await freePort();
    const apiChild = spawn(process.execPath, [...(process.env.BENCH_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : []), join(__dirname, "..", "src", "cli", "main.js"), "api"], {
      stdio: ["ignore", "ignore", "inherit"],
      env: {
        ...process.env,
        DATABASE_URL: schema.url,
        SQS_ENDPOINT: emulator.endpoint,
        SQS_QUEUE_NAME: queueName,
        ...(process.env.BENCH_REDIS_URL === "" ? {} : { REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379" }),
        REDIS_PREFIX: `bench-${Date.now()}`,
        RATE_LIMIT_PER_MINUTE: "100000000",
        PORT: String(apiPort),
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      },
    });
    children.push(apiChild);
    await waitForHttp(`http://127.0.0.1:${apiPort}/readyz`);
    const api = { port: apiPort };
    const { child: bareChild, announced: bare } = await spawnAnnouncing<{ port: number }>([join(__dirname, "bare-koa.js")]);
    children.push(bareChild);

    const body = JSON.stringify({ type: "order.created", source: "bench", tags: ["bench"], payload: { order: 42, items: [{ sku: "A-1", qty: 2 }], note: "x".repeat(200) } });
    const headers = { "content-type": "application/json", authorization: `Bearer ${key.secret}` };
    // Warm both up (JIT, connections, key cache) before measuring.
    await new Promise((r) => setTimeout(r, 300));
    const baseline = await run(`http://127.0.0.1:${bare.port}/events`, headers, body);
    const ingest = await run(`http://127.0.0.1:${api.port}/events`, headers, body);

    const metricsText = await (await fetch(`http://127.0.0.1:${api.port}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metricsText)?.[1] ?? NaN);
    const meanBatch = metric("triggers_sqs_send_batch_size_sum") / metric("triggers_sqs_send_batch_size_count");
    const meanSendMs = (1000 * metric("triggers_sqs_send_seconds_sum")) / metric("triggers_sqs_send_seconds_count");
    // Every 202 must be backed by a message on the queue.
    const sqs = createSqsClient({ region: "us-east-1", endpoint: emulator.endpoint });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
    const queue = new SqsQueue(sqs, QueueUrl!);
    const messages = (await queue.depth()).visible;
    let queued = 0;
    for (;;) {
      const got = await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 300 });
      if (got.length === 0) break;
      for (const m of got) queued += decodeQueuedMessage(m.body).events.length;
    }
    sqs.destroy();

    const line = (name: string, r: autocannon.Result) =>
      `  ${name.padEnd(28)}: ${fmt(r.requests.average)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  (2xx ${r["2xx"]}, non-2xx ${r.non2xx}, errors ${r.errors})`;
    process.stdout.write(
      [
        `bench:ingest  connections=${CONNECTIONS} duration=${SECONDS}s`,
        line("baseline bare Koa 202", baseline),
        line("POST /events (SQS-backed)", ingest),
        `  ratio ingest / baseline      : ${fmt(ingest.requests.average / baseline.requests.average, 2)}  (aim >= 0.50)`,
        `  202s answered: ${ingest["2xx"]}; events on the queue: ${queued} in ${messages} messages; mean events per SendMessageBatch: ${fmt(meanBatch, 1)}, mean SendMessageBatch latency ${fmt(meanSendMs, 1)} ms`,
        "",
      ].join("\n"),
    );
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await db.close();
    await schema.drop();
    emulator.stop();
  }
}

runBench(main);
