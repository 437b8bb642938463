import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";

/** Creates (or finds) the main queue and its dead-letter queue with a RedrivePolicy. For emulators and dev. */
export async function createQueues(
  client: SQSClient,
  opts: { name: string; maxReceiveCount: number; visibilitySeconds?: number },
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlq = await client.send(
    new CreateQueueCommand({ QueueName: `${opts.name}-dlq`, Attributes: { MessageRetentionPeriod: "1209600" } }),
  );
  const dlqUrl = dlq.QueueUrl!;
  const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }));
  const dlqArn = attrs.Attributes?.QueueArn;
  if (!dlqArn) throw new Error("could not read the dead-letter queue's ARN");
  const main = await client.send(
    new CreateQueueCommand({
      QueueName: opts.name,
      Attributes: {
        VisibilityTimeout: String(opts.visibilitySeconds ?? 60),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maxReceiveCount }),
      },
    }),
  );
  return { queueUrl: main.QueueUrl!, dlqUrl };
}
