import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { errorMessage } from "../errors";

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
  /** Seconds before the message becomes visible (0–900; default the queue's). */
  readonly delaySeconds?: number;
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

/** Raised when a send cannot start (too many calls in flight): nothing was sent. */
export class SqsBusyError extends Error {}

/**
 * Raised when a send's outcome is unknown: it passed its deadline, or it failed after its request
 * may have reached SQS (a connection dropped or timed out after the request was written). SQS may
 * have enqueued its messages.
 */
export class SqsOutcomeUnknownError extends Error {}

/**
 * The inputs of send calls an attempt of which failed after its request may have reached SQS.
 * Keyed by the command's input object, which every attempt of one call shares (the SDK retries
 * up to maxAttempts: one ambiguous attempt makes the whole call's outcome unknown).
 */
const mayHaveReachedSqs = new WeakSet<object>();

/** Network error codes that mean the request never left this host or was never accepted by a server. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

/**
 * Whether a failed attempt may have delivered its request: not when SQS answered (an HTTP error
 * response: the call was refused), nor when no connection was made (refused, unresolvable, or the
 * SDK's connect timeout, whose error names it); yes for anything else (reset, hang-up, request
 * timeout, abort), since the request may have been written before the connection failed.
 */
function attemptMayHaveReachedSqs(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return true;
  const e = err as { $metadata?: { httpStatusCode?: unknown }; code?: unknown; message?: unknown };
  if (typeof e.$metadata?.httpStatusCode === "number") return false;
  if (typeof e.code === "string" && NOT_SENT_CODES.has(e.code)) return false;
  // @smithy/node-http-handler's connect timeout ("... did not establish a connection with the server ...").
  if (typeof e.message === "string" && e.message.includes("did not establish a connection")) return false;
  return true;
}

export interface SqsClientOptions {
  readonly region: string;
  readonly endpoint?: string | undefined;
  /** Per attempt: TCP (and TLS) connect, ms. */
  readonly connectTimeoutMs?: number;
  /** Per attempt: the socket may stay silent this long, ms. */
  readonly requestTimeoutMs?: number;
  /** Sockets per host at most (keep-alive). */
  readonly maxSockets?: number;
}

/** Creates the SDK client; `endpoint` points it at an emulator. */
export function createSqsClient(opts: SqsClientOptions): SQSClient {
  const agent = { keepAlive: true, maxSockets: opts.maxSockets ?? 50 };
  const client = new SQSClient({
    region: opts.region,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.connectTimeoutMs ?? 1000,
      requestTimeout: opts.requestTimeoutMs ?? 30_000,
      // requestTimeout alone only logs a warning in this SDK; the idle-socket timeout is what ends
      // an attempt on a socket that stopped answering (a frozen or failed-over endpoint).
      socketTimeout: opts.requestTimeoutMs ?? 30_000,
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
    }),
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
  // Runs around each attempt (the deserialize step is inside the retry middleware).
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (attemptMayHaveReachedSqs(err)) mayHaveReachedSqs.add(args.input as object);
        throw err;
      }
    },
    { step: "deserialize", priority: "high", name: "triggersAttemptOutcome" },
  );
  return client;
}

/** How sends are bounded: their own client, a deadline per call and a cap on calls in flight. */
export interface SendLimits {
  readonly client?: SQSClient;
  /** A SendMessageBatch that has not answered within this fails with an unknown outcome (its requests answer 503), ms. */
  readonly timeoutMs?: number;
  /** Calls in flight at most; past it a send fails at once instead of piling up on a hung queue. */
  readonly maxConcurrent?: number;
}

/** The one queue adapter of the service: a thin, typed layer over one SQS queue. */
export class SqsQueue {
  private readonly sendClient: SQSClient;
  private readonly sendTimeoutMs: number;
  private readonly maxConcurrentSends: number;
  private sendsInFlight = 0;

  constructor(
    readonly client: SQSClient,
    readonly queueUrl: string,
    limits: SendLimits = {},
  ) {
    this.sendClient = limits.client ?? client;
    this.sendTimeoutMs = limits.timeoutMs ?? 5000;
    this.maxConcurrentSends = limits.maxConcurrent ?? 64;
  }

  /**
   * Sends up to 10 entries in one call; reports each entry's outcome (SQS may fail some and not
   * others). Fails with SqsBusyError when the cap of calls in flight is reached (nothing sent),
   * with SqsOutcomeUnknownError past the send deadline or when the call failed after its request
   * may have reached SQS, and with the SDK's error when nothing was enqueued. A call that passed its deadline keeps its slot until the SDK gives up on it (its
   * per-attempt timeouts), so a hung queue never has more than the cap of calls open.
   */
  async sendBatch(entries: readonly SendEntry[], signal?: AbortSignal): Promise<SendOutcome[]> {
    if (entries.length === 0) return [];
    if (entries.length > SQS_MAX_BATCH_ENTRIES) throw new RangeError("at most 10 entries per SendMessageBatch");
    if (this.sendsInFlight >= this.maxConcurrentSends) throw new SqsBusyError(`${this.sendsInFlight} SendMessageBatch calls already in flight`);
    const command = new SendMessageBatchCommand({
      QueueUrl: this.queueUrl,
      Entries: entries.map((e) => ({ Id: e.id, MessageBody: e.body, ...(e.delaySeconds === undefined ? {} : { DelaySeconds: e.delaySeconds }) })),
    });
    this.sendsInFlight++;
    const call = (signal ? this.sendClient.send(command, { abortSignal: signal }) : this.sendClient.send(command)).finally(() => this.sendsInFlight--);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SqsOutcomeUnknownError(`SendMessageBatch did not answer within ${this.sendTimeoutMs} ms`)), this.sendTimeoutMs);
    });
    call.catch(() => undefined); // settled late after a deadline: nobody waits for it any more
    let res: Awaited<typeof call>;
    try {
      res = await Promise.race([call, deadline]);
    } catch (err) {
      if (err instanceof SqsOutcomeUnknownError || !mayHaveReachedSqs.has(command.input)) throw err;
      throw new SqsOutcomeUnknownError(`SendMessageBatch failed after its request may have reached SQS: ${errorMessage(err)}`);
    } finally {
      clearTimeout(timer);
    }
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
