/**
 * The minimal durable pipeline, the second ingest baseline: Koa, a JSON body parse, an event id,
 * then the project's SendBatcher (coalesced, packed SendMessageBatch on the same SDK client setup)
 * and a 202 only after SQS confirmed the event. No auth, validation, rate limit, idempotency,
 * receipts, log line or metrics. Reads SQS_ENDPOINT and SQS_QUEUE_NAME (created if missing);
 * prints its port. GET /__stats answers SendMessageBatch calls and events sent.
 */
import Koa from "koa";
import getRawBody from "raw-body";
import { createSqsClient, SqsQueue } from "../src/queue/sqs-queue";
import { createQueues } from "../src/queue/create-queues";
import { SendBatcher } from "../src/queue/send-batcher";
import { newEventId } from "../src/domain/ids";
import { encodeQueuedEvent } from "../src/domain/queued-event";

async function main(): Promise<void> {
  const sqs = createSqsClient({ region: "us-east-1", endpoint: process.env.SQS_ENDPOINT });
  const { queueUrl } = await createQueues(sqs, { name: process.env.SQS_QUEUE_NAME ?? "bench-minimal", maxReceiveCount: 5 });
  let calls = 0;
  let sent = 0;
  const batcher = new SendBatcher(new SqsQueue(sqs, queueUrl), Number(process.env.SQS_SEND_LINGER_MS ?? 2), (size) => {
    calls++;
    sent += size;
  });
  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.method === "GET" && ctx.path === "/__stats") {
      ctx.body = { calls, events: sent };
      return;
    }
    const envelope = JSON.parse((await getRawBody(ctx.req, { limit: 1_048_576 })).toString("utf8")) as Record<string, unknown>;
    const receivedAt = new Date().toISOString();
    const id = newEventId();
    // The same message shape the API sends, so both pipelines put equal bytes on the queue.
    const body = encodeQueuedEvent({
      v: 1,
      id,
      tenant_id: "bench",
      type: String(envelope.type),
      source: (envelope.source as string | undefined) ?? null,
      payload: envelope.payload,
      tags: (envelope.tags as string[] | undefined) ?? [],
      occurred_at: null,
      idempotency_key: null,
      body_hash: "0".repeat(64),
      received_at: receivedAt,
    });
    await batcher.send(body, body.length);
    ctx.status = 202;
    ctx.body = { id, status: "accepted", received_at: receivedAt };
  });
  const server = app.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
  });
  process.on("SIGTERM", () => server.close(() => void batcher.drain().then(() => process.exit(0))));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
