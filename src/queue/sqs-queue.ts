import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";

/** SQS hard limits (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html). */
export const SQS_MAX_BATCH_ENTRIES = 10;
export const SQS_MAX_BATCH_BYTES = 262_144;
/**
 * Largest message this service sends: the queue's MaximumMessageSize as created here and by the
 * Terraform module (SQS allows up to 1 MiB since 2025; 256 KiB keeps older providers and queues valid).
 */
export const SQS_MAX_MESSAGE_BYTES = 262_144;

export interface SendEntry {
  /** Unique within one batch call. */
  readonly id: string;
  readonly body: string;
}

export interface SendOutcome {
  readonly id: string;
  readonly ok: boolean;
  readonly error?: string;
  /** For a failed entry: SQS blames the entry itself (e.g. InvalidMessageContents), so resending it cannot succeed. */
  readonly senderFault?: boolean;
}

export interface ReceivedMessage {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string | undefined;
  /** How many times SQS has handed this message out, this one included. */
  readonly receiveCount: number;
}

/** Creates the SDK client; `endpoint` points it at an emulator. */
export function createSqsClient(opts: { region: string; endpoint?: string | undefined }): SQSClient {
  return new SQSClient({
    region: opts.region,
    ...(opts.endpoint
      ? { endpoint: opts.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } }
      : {}),
    maxAttempts: 3,
    // Message bodies travel over TLS (and are JSON-validated by the worker); skipping the SDK's
    // per-message MD5 verification saves a hash per message on the hot path.
    md5: false,
    // Resolve each command's middleware stack once instead of on every call (about a third of the
    // SDK's CPU per call here). Only used for calls without per-call options.
    cacheMiddleware: true,
  });
}

/** The one queue adapter of the service: a thin, typed layer over one SQS queue. */
export class SqsQueue {
  constructor(
    readonly client: SQSClient,
    readonly queueUrl: string,
  ) {}

  /** Sends up to 10 entries in one call; reports each entry's outcome (SQS may fail some and not others). */
  async sendBatch(entries: readonly SendEntry[], signal?: AbortSignal): Promise<SendOutcome[]> {
    if (entries.length === 0) return [];
    if (entries.length > SQS_MAX_BATCH_ENTRIES) throw new RangeError("at most 10 entries per SendMessageBatch");
    const command = new SendMessageBatchCommand({
      QueueUrl: this.queueUrl,
      Entries: entries.map((e) => ({ Id: e.id, MessageBody: e.body })),
    });
    const res = signal ? await this.client.send(command, { abortSignal: signal }) : await this.client.send(command);
    const failed = new Map((res.Failed ?? []).map((f) => [f.Id, f]));
    const succeeded = new Set((res.Successful ?? []).map((s) => s.Id));
    return entries.map((e) => {
      if (succeeded.has(e.id)) return { id: e.id, ok: true };
      const f = failed.get(e.id);
      if (!f) return { id: e.id, ok: false, error: "no result" };
      return { id: e.id, ok: false, error: [f.Code, f.Message].filter(Boolean).join(": ") || "failed", senderFault: f.SenderFault === true };
    });
  }

  /** Long-polls for up to `max` (1–10) messages. */
  async receive(opts: { max: number; waitSeconds: number; visibilitySeconds: number; signal?: AbortSignal }): Promise<ReceivedMessage[]> {
    const res = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.min(Math.max(opts.max, 1), SQS_MAX_BATCH_ENTRIES),
        WaitTimeSeconds: opts.waitSeconds,
        VisibilityTimeout: opts.visibilitySeconds,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
    return (res.Messages ?? []).filter(hasHandle).map((m) => ({
      messageId: m.MessageId ?? m.ReceiptHandle,
      receiptHandle: m.ReceiptHandle,
      body: m.Body,
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? "1"),
    }));
  }

  /** Deletes received messages; returns the receipt handles SQS failed to delete. */
  async deleteBatch(receiptHandles: readonly string[]): Promise<string[]> {
    const failed: string[] = [];
    for (let i = 0; i < receiptHandles.length; i += SQS_MAX_BATCH_ENTRIES) {
      const chunk = receiptHandles.slice(i, i + SQS_MAX_BATCH_ENTRIES);
      const res = await this.client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: chunk.map((handle, j) => ({ Id: String(j), ReceiptHandle: handle })),
        }),
      );
      for (const f of res.Failed ?? []) failed.push(chunk[Number(f.Id)]!);
    }
    return failed;
  }

  /** Makes received messages visible again after `seconds` (0 = now). */
  async changeVisibility(receiptHandles: readonly string[], seconds: number): Promise<void> {
    for (let i = 0; i < receiptHandles.length; i += SQS_MAX_BATCH_ENTRIES) {
      const chunk = receiptHandles.slice(i, i + SQS_MAX_BATCH_ENTRIES);
      await this.client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: chunk.map((handle, j) => ({ Id: String(j), ReceiptHandle: handle, VisibilityTimeout: seconds })),
        }),
      );
    }
  }

  /** Approximate visible and in-flight message counts. */
  async depth(signal?: AbortSignal): Promise<{ visible: number; inFlight: number }> {
    const command = new GetQueueAttributesCommand({
      QueueUrl: this.queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    });
    const res = signal ? await this.client.send(command, { abortSignal: signal }) : await this.client.send(command);
    return {
      visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}

function hasHandle(m: Message): m is Message & { ReceiptHandle: string } {
  return typeof m.ReceiptHandle === "string";
}
