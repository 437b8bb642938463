import { parseArgs } from "node:util";
import type { Config } from "../config";
import { createQueues } from "../queue/create-queues";
import { startSqsEmulator } from "../queue/sqs-emulator";
import { createSqsClient } from "../queue/sqs-queue";
import { stopOnSignal } from "../roles/run";

/** `triggers sqs-emulator`: an SQS emulator on 127.0.0.1 with the queue and its DLQ; prints its endpoint and queue URLs as one JSON line. */
export async function cmdSqsEmulator(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { port: { type: "string", default: "9324" }, queue: { type: "string" }, "max-receive-count": { type: "string" } },
  });
  const emulator = await startSqsEmulator({ port: Number(values.port), region: config.sqs.region });
  const client = createSqsClient({ region: config.sqs.region, endpoint: emulator.endpoint });
  const queues = await createQueues(client, {
    name: values.queue ?? config.sqs.queueName,
    maxReceiveCount: values["max-receive-count"] ? Number(values["max-receive-count"]) : config.sqs.maxReceiveCount,
    visibilitySeconds: config.worker.visibilitySeconds,
  });
  process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint, ...queues })}\n`);
  stopOnSignal(undefined, async () => {
    client.destroy();
    await emulator.stop();
  });
}
