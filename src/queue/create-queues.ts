import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, type CreateQueueCommandInput, type SQSClient } from "@aws-sdk/client-sqs";
import { SQS_MAX_MESSAGE_BYTES } from "./sqs-queue";

/** Creates a queue, or finds it when it already exists with other attributes (another role created it first). */
async function createOrFind(client: SQSClient, input: CreateQueueCommandInput): Promise<string> {
  try {
    return (await client.send(new CreateQueueCommand(input))).QueueUrl!;
  } catch (err) {
    if (!/QueueNameExists|QueueAlreadyExists/.test(String((err as { name?: string }).name) + String((err as Error).message))) throw err;
    return (await client.send(new GetQueueUrlCommand({ QueueName: input.QueueName }))).QueueUrl!;
  }
}

/** Creates (or finds) the main queue and its dead-letter queue with a RedrivePolicy. For emulators and dev. */
export async function createQueues(
  client: SQSClient,
  opts: { name: string; maxReceiveCount: number; visibilitySeconds?: number },
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlqUrl = await createOrFind(client, { QueueName: `${opts.name}-dlq`, Attributes: { MessageRetentionPeriod: "1209600", MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES) } });
  const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }));
  const dlqArn = attrs.Attributes?.QueueArn;
  if (!dlqArn) throw new Error("could not read the dead-letter queue's ARN");
  const queueUrl = await createOrFind(client, {
    QueueName: opts.name,
    Attributes: {
      VisibilityTimeout: String(opts.visibilitySeconds ?? 60),
      MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES), // as the Terraform module sets it
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maxReceiveCount }),
    },
  });
  return { queueUrl, dlqUrl };
}
