/**
 * Worker drain rate: events/s from a pre-filled SQS queue into Postgres, next to two baselines
 * measured in the same run on the same queue emulator and database:
 *   - receive+delete alone (the queue's own ceiling for this receiver count),
 *   - one-statement INSERT … unnest alone (the database's ceiling for 10-row batches).
 *   - a minimal durable drain: receive 10, one INSERT of those 10 message bodies into a plain table
 *     (id primary key, jsonb body; a prepared statement on a pool of its own), delete 10: the least
 *     that stores what it deletes, on the same SDK, emulator and database.
 * Prints the ratio of the worker's rate to the smaller of the first two (aim >= 0.8), and the
 * minimal drain's to the same, the ceiling of any worker that stores before it deletes here.
 * Each side runs BENCH_ROUNDS times, alternating, and the rates are totals over all rounds.
 *   BENCH_EVENTS (default 20000 per side per round), BENCH_RECEIVERS (default 16, the worker default),
 *   BENCH_ROUNDS (default 3), BENCH_SUBSCRIPTIONS (default 1: each of the 8 bench tenants has only
 *   `default`; with N, N-1 more subscriptions whose filters match every bench event, so every
 *   stored event fans out to N deliveries)
 */
import { loadConfig } from "../src/config";
import { encodeQueuedEvent, type QueuedEvent } from "../src/domain/queued-event";
import { createLogger } from "../src/observability/logger";
import { createMetrics } from "../src/observability/metrics";
import { createQueues } from "../src/queue/create-queues";
import { createSqsClient, SqsQueue, type ReceivedMessage } from "../src/queue/sqs-queue";
import { connectPostgres } from "../src/store/database";
import { insertEvents } from "../src/store/events/insert-events";
import { createSubscription, ensureDefaultSubscriptions } from "../src/store/subscriptions";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { createIngestWorker } from "../src/roles/worker";
import { postgresCpuMs, walPosition, benchEvents, benchSchema, fmt, runBench } from "./support";
import { spawnEmulator } from "../src/dev/local-services";
import { Pool } from "pg";
import { parseDatabaseUrl } from "../src/store/database";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const RECEIVERS = Number(process.env.BENCH_RECEIVERS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 1);

async function fill(queue: SqsQueue, events: QueuedEvent[]): Promise<void> {
  const chunks: QueuedEvent[][] = [];
  for (let i = 0; i < events.length; i += 10) chunks.push(events.slice(i, i + 10));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        const out = await queue.sendBatch(chunk.map((e, j) => ({ id: String(j), body: encodeQueuedEvent(e) })));
        if (out.some((o) => !o.ok)) throw new Error("fill failed");
      }
    }),
  );
}

async function main(): Promise<void> {
  const emulator = await spawnEmulator();
  const schema = await benchSchema();
  const config = loadConfig({ DATABASE_URL: schema.url, SQS_ENDPOINT: emulator.endpoint, LOG_LEVEL: "warn" });
  const db = connectPostgres(schema.url, { poolSize: RECEIVERS + 2 });
  const sqs = createSqsClient({ region: config.sqs.region, endpoint: emulator.endpoint });
  try {
    await applyMigrations(db.migrator, loadMigrations());
    // Fan-out: N-1 subscriptions per bench tenant besides default, with filters that match (and so are evaluated).
    const tenants = Array.from({ length: 8 }, (_, i) => `tenant-${i}`);
    await ensureDefaultSubscriptions(db.prisma, tenants);
    for (const t of tenants) {
      for (let k = 1; k < SUBSCRIPTIONS; k++) await createSubscription(db.prisma, t, `sub-${k}`, k % 2 === 1 ? { types: ["order.created"] } : { tags: ["bench"] }, config.limits.maxSubscriptionsPerTenant);
    }
    const makeQueue = async (name: string) =>
      new SqsQueue(sqs, (await createQueues(sqs, { name, maxReceiveCount: 5 })).queueUrl);
    // Wall time of each side, this process's CPU time while it ran (the client's share of the
    // work), the Postgres server's CPU time and the WAL it wrote.
    const cpu = { queue: 0, insert: 0, worker: 0, minimal: 0 };
    const pgCpu = { queue: 0, insert: 0, worker: 0, minimal: 0 };
    const wal = { queue: 0n, insert: 0n, worker: 0n, minimal: 0n };
    let current: keyof typeof cpu = "queue";
    const timed = async (work: () => Promise<void>) => {
      const w0 = await walPosition(schema.url);
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const p0 = postgresCpuMs();
      await work();
      const used = process.cpuUsage(c0);
      pgCpu[current] += postgresCpuMs() - p0;
      cpu[current] += (used.user + used.system) / 1000;
      const seconds = (performance.now() - t0) / 1000;
      wal[current] += (await walPosition(schema.url)) - w0;
      return seconds;
    };

    // A pre-filled queue drained by RECEIVERS loops of receive 10, `store` (when given), delete 10.
    const drainQueue = async (name: string, store?: (msgs: ReceivedMessage[]) => Promise<unknown>) => {
      const q = await makeQueue(name);
      await fill(q, benchEvents(EVENTS));
      let drained = 0;
      return timed(() =>
        Promise.all(
          Array.from({ length: RECEIVERS }, async () => {
            for (;;) {
              const msgs = await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 60 });
              if (msgs.length === 0) {
                if (drained >= EVENTS) return;
                continue;
              }
              if (store) await store(msgs);
              await q.deleteBatch(msgs.map((m) => m.receiptHandle));
              drained += msgs.length;
            }
          }),
        ).then(() => undefined),
      );
    };

    // Baseline 1: receive + delete only.
    const receiveDelete = (round: number) => drainQueue(`bench-raw-queue-${round}`);

    // Baseline 2: one-statement inserts of 10 rows, same concurrency.
    const insertOnly = async () => {
      const rows = benchEvents(EVENTS);
      let next = 0;
      return timed(() =>
        Promise.all(
          Array.from({ length: RECEIVERS }, async () => {
            while (next < rows.length) {
              const batch = rows.slice(next, next + 10);
              next += 10;
              await insertEvents(db.prisma, batch);
            }
          }),
        ).then(() => undefined),
      );
    };

    // Baseline 3: the minimal durable drain, on a plain pg pool of its own.
    const { connectionString, schema: schemaName } = parseDatabaseUrl(schema.url);
    // Idle connections kept: one that closed mid-run would take its CPU out of the /proc sum.
    const minimalPool = new Pool({ connectionString, max: RECEIVERS, idleTimeoutMillis: 0, ...(schemaName ? { options: `-c search_path="${schemaName}"` } : {}) });
    await minimalPool.query("CREATE TABLE bench_minimal_drain (id text PRIMARY KEY, body jsonb NOT NULL)");
    const minimalDrain = (round: number) =>
      drainQueue(`bench-minimal-queue-${round}`, (msgs) =>
        minimalPool.query({
          name: "bench_minimal_drain",
          text: "INSERT INTO bench_minimal_drain (id, body) SELECT * FROM unnest($1::text[], $2::jsonb[]) ON CONFLICT DO NOTHING",
          values: [msgs.map((m) => m.messageId), msgs.map((m) => m.body)],
        }),
      );

    // The worker itself: receive, insert, delete; done when its own counter has every row (no
    // polling of the table, which would load the database it is measuring).
    const metrics = createMetrics();
    const inserted = async () => (await metrics.workerRowsInserted.get()).values[0]?.value ?? 0;
    const drainWorker = async (round: number) => {
      const q = await makeQueue(`bench-worker-queue-${round}`);
      await fill(q, benchEvents(EVENTS));
      const worker = createIngestWorker({ config, db, queue: q, logger: createLogger("warn"), metrics }, { receivers: RECEIVERS, waitSeconds: 1, visibilitySeconds: 60 });
      const before = await inserted();
      const seconds = await timed(async () => {
        worker.start();
        while ((await inserted()) - before < EVENTS) await new Promise((r) => setTimeout(r, 5));
      });
      await worker.stop();
      return seconds;
    };

    // Alternating rounds, so drift in the machine's speed during the run touches every side alike.
    const spent = { queue: 0, insert: 0, worker: 0, minimal: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      current = "queue";
      spent.queue += await receiveDelete(round);
      current = "insert";
      spent.insert += await insertOnly();
      current = "worker";
      spent.worker += await drainWorker(round);
      current = "minimal";
      spent.minimal += await minimalDrain(round);
    }
    await minimalPool.end();
    const total = EVENTS * ROUNDS;
    const queueRate = total / spent.queue;
    const insertRate = total / spent.insert;
    const workerRate = total / spent.worker;
    const minimalRate = total / spent.minimal;
    const batches = (await metrics.workerBatches.get()).values[0]?.value ?? 0;

    const floor = Math.min(queueRate, insertRate);
    process.stdout.write(
      [
        `bench:drain  events=${EVENTS} per side per round, ${ROUNDS} alternating rounds, receivers=${RECEIVERS}, subscriptions=${SUBSCRIPTIONS} (deliveries per event)`,
        `  baseline receive+delete only : ${fmt(queueRate)} events/s`,
        `  baseline insert only (10/stmt): ${fmt(insertRate)} events/s`,
        `  minimal durable drain          : ${fmt(minimalRate)} events/s (receive 10, INSERT 10 bodies, delete 10)`,
        `  worker (receive+insert+delete): ${fmt(workerRate)} events/s`,
        `  ratio worker / min(baselines) : ${fmt(workerRate / floor, 2)}  (aim >= 0.80); minimal drain / min(baselines): ${fmt(minimalRate / floor, 2)}; worker / minimal drain: ${fmt(workerRate / minimalRate, 2)}`,
        `  rows per worker INSERT (mean) : ${fmt(total / Math.max(1, batches), 1)}`,
        `  client CPU per 1 000 events  : receive+delete ${fmt((1000 * cpu.queue) / total)} ms, insert ${fmt((1000 * cpu.insert) / total)} ms, worker ${fmt((1000 * cpu.worker) / total)} ms, minimal drain ${fmt((1000 * cpu.minimal) / total)} ms`,
        `  Postgres CPU per 1 000 events: insert ${fmt((1000 * pgCpu.insert) / total)} ms, worker ${fmt((1000 * pgCpu.worker) / total)} ms, minimal drain ${fmt((1000 * pgCpu.minimal) / total)} ms (every postgres process, /proc)`,
        `  WAL per event                 : insert ${fmt(Number(wal.insert) / total)} bytes, worker ${fmt(Number(wal.worker) / total)} bytes`,
        "",
      ].join("\n"),
    );
  } finally {
    sqs.destroy();
    await db.close();
    await schema.drop();
    emulator.stop();
  }
}

runBench(main);
