import { randomUUID } from "node:crypto";
import { BatchPartiallyAcceptedError, type BatchItemAccepted, type BatchItemResult } from "./batch-partially-accepted-error";
import { CLOUDEVENT_BATCH_CONTENT_TYPE, CLOUDEVENT_CONTENT_TYPE, toBinary, toStructured, type CloudEventInput, type DeliveredCloudEvent } from "./cloudevents";
import { HttpTransport, parseRetryAfter, TriggersError, type ClientOptions } from "./http";

/*
 * Naming: objects that travel on the wire (events sent, accepted events, inbox events, ack results)
 * keep the HTTP API's snake_case field names, exactly as docs and /openapi.json spell them; options
 * of the library's own calls and properties of its classes are camelCase.
 */

/** An event to send (the POST /events envelope). */
export interface EventInput {
  readonly type: string;
  readonly payload: unknown;
  readonly source?: string;
  readonly tags?: readonly string[];
  /** ISO 8601 date or date-time. */
  readonly occurred_at?: string;
}

/** An event of a batch: the envelope and, optionally, its own idempotency key (else one is generated). */
export interface BatchEventInput extends EventInput {
  readonly idempotency_key?: string;
}

/** An accepted event: the API's answer plus the idempotency key it was sent with. */
export interface Accepted {
  readonly id: string;
  readonly status: "accepted";
  readonly received_at: string;
  /** True when the idempotency key matched an earlier send and nothing new was queued. */
  readonly replayed: boolean;
  /** The key sent: the caller's, or the one generated for this call. */
  readonly idempotency_key: string;
}

/** A leased event as GET /inbox hands it out: the only answer that carries its `lease_id`. */
export interface InboxEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string | null;
  readonly payload: unknown;
  readonly tags: string[];
  readonly occurred_at: string | null;
  readonly received_at: string;
  readonly stored_at: string;
  /** The version of its type's schema the event was validated against at ingest (null: none). */
  readonly schema_version: number | null;
  readonly status: "pending" | "delivered" | "acknowledged" | "dead";
  readonly delivery_count: number;
  /** The lease's token: a secret of the consumer that leased the event. */
  readonly lease_id: string;
  readonly leased_at: string | null;
  readonly lease_expires_at: string | null;
  readonly acknowledged_at: string | null;
  readonly dead_at: string | null;
}

/** One page of GET /inbox, as the API answers it. */
export interface InboxPage {
  readonly data: InboxEvent[];
  readonly has_more: boolean;
}

/** Filters of GET /inbox. */
export interface InboxFilter {
  readonly type?: string;
  readonly source?: string;
  readonly tags?: readonly string[];
  readonly since?: string;
  readonly until?: string;
}

/** Options of every inbox call. */
export interface InboxCallOptions {
  /** The subscription whose deliveries the call acts on (the `subscription` parameter). Default the API's, `default`. */
  readonly subscription?: string;
  readonly signal?: AbortSignal;
}

export interface LeaseRequest extends InboxFilter, InboxCallOptions {
  /** Events per answer (1–500, default 50). */
  readonly limit?: number;
  /** Lease length, seconds (1–3600; default the server's, 30). */
  readonly visibilityTimeout?: number;
  /** Long polling: seconds to wait for an event when none is deliverable (0–20). */
  readonly waitSeconds?: number;
}

export interface LeaseAckResult {
  readonly id: string;
  readonly lease_id: string;
  readonly status: "acknowledged" | "lease_expired" | "not_found";
}

/** An item of a 202 or 207 batch answer. */
type BatchAnswerItem =
  | { index?: number; id: string; status: "accepted"; received_at: string; replayed: boolean }
  | { index: number; status: "rejected"; error: { code: string; message: string }; retryable: boolean };

/**
 * The API client: producers send events; the inbox calls (lease, ack, nack, extend) are what
 * Consumer is built on, usable directly too. Every call has a deadline per attempt and one overall;
 * 429, 502, 503 (service_unavailable, enqueue_outcome_unknown), 504 and lost answers are retried
 * with backoff honouring Retry-After. Every send carries an idempotency key (the caller's, or a
 * random UUID), so a retry can never store an event twice.
 */
export class TriggersClient {
  readonly http: HttpTransport;

  constructor(opts: ClientOptions) {
    this.http = new HttpTransport(opts);
  }

  /** POST /events with an Idempotency-Key (`idempotencyKey`, else a random UUID); a repeat of the same event is answered with the first id (replayed). */
  async send(event: EventInput, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Accepted> {
    const key = opts.idempotencyKey ?? randomUUID();
    const r = await this.http.request<{ id: string; status: "accepted"; received_at: string }>("POST", "/events", {
      body: event,
      headers: { "Idempotency-Key": key },
      signal: opts.signal,
    });
    return { id: r.body.id, status: r.body.status, received_at: r.body.received_at, replayed: r.headers.get("idempotent-replayed") === "true", idempotency_key: key };
  }

  /**
   * POST /events/batch: 1–100 events, each with its `idempotency_key` (a random UUID when absent).
   * Resolves only when every event is accepted. Events the API refuses (a 207) are resent with
   * their keys, within the same retries and deadline as the rest of the call; if some are still not
   * accepted it throws BatchPartiallyAcceptedError, which carries every event's outcome.
   */
  async sendBatch(events: readonly BatchEventInput[], opts: { signal?: AbortSignal } = {}): Promise<Accepted[]> {
    const items = events.map((e) => ({ ...e, idempotency_key: e.idempotency_key ?? randomUUID() }));
    const results: BatchItemResult[] = [];
    const budget = this.http.budget();
    let pending = items.map((_, i) => i);
    while (pending.length > 0) {
      let answer: { status: number; headers: Headers; body: { data: BatchAnswerItem[] } };
      try {
        answer = await this.http.request<{ data: BatchAnswerItem[] }>("POST", "/events/batch", { body: { events: pending.map((i) => items[i]) }, budget, signal: opts.signal });
      } catch (err) {
        // Nothing known about any event: the plain error. Otherwise what is still pending is not known to be accepted.
        if (results.length === 0) throw err;
        const e = err instanceof TriggersError ? err : new TriggersError(String(err), 0, "network_error");
        // Unanswered (timeout, network, abort) means unknown, not refused: resending with the key settles it.
        const retryable = e.retryable || e.status === 0;
        for (const i of pending) results[i] = { index: i, status: "rejected", error: { code: e.code, message: e.message }, retryable, idempotency_key: items[i]!.idempotency_key };
        break;
      }
      const retry: number[] = [];
      answer.body.data.forEach((d, j) => {
        const i = pending[d.index ?? j]!;
        const idempotency_key = items[i]!.idempotency_key;
        if (d.status === "accepted") results[i] = { index: i, status: "accepted", id: d.id, received_at: d.received_at, replayed: d.replayed, idempotency_key };
        else {
          results[i] = { index: i, status: "rejected", error: { code: d.error.code, message: d.error.message }, retryable: d.retryable, idempotency_key };
          if (d.retryable) retry.push(i);
        }
      });
      if (retry.length === 0) break;
      const refused = new TriggersError(`${retry.length} events refused`, answer.status, "batch_partially_accepted", [], parseRetryAfter(answer.headers.get("retry-after")));
      try {
        await budget.beforeRetry(refused, opts.signal);
      } catch {
        break;
      }
      pending = retry;
    }
    if (items.every((_, i) => results[i]?.status === "accepted")) {
      return (results as BatchItemAccepted[]).map(({ id, status, received_at, replayed, idempotency_key }) => ({ id, status, received_at, replayed, idempotency_key }));
    }
    throw new BatchPartiallyAcceptedError(results);
  }

  /**
   * POST /events with a CloudEvent, in structured mode (default) or binary mode. Its `source` and
   * `id` make it idempotent (the API derives the key from them), so a retry never stores it twice.
   */
  async sendCloudEvent(event: CloudEventInput, opts: { mode?: "structured" | "binary"; signal?: AbortSignal } = {}): Promise<Omit<Accepted, "idempotency_key">> {
    const request =
      opts.mode === "binary"
        ? (() => {
            const b = toBinary(event);
            return { rawBody: b.body, headers: b.headers, ...(b.contentType === undefined ? {} : { contentType: b.contentType }) };
          })()
        : { rawBody: JSON.stringify(toStructured(event)), contentType: CLOUDEVENT_CONTENT_TYPE };
    const r = await this.http.request<{ id: string; status: "accepted"; received_at: string }>("POST", "/events", { ...request, signal: opts.signal });
    return { id: r.body.id, status: r.body.status, received_at: r.body.received_at, replayed: r.headers.get("idempotent-replayed") === "true" };
  }

  /** POST /events/batch in CloudEvents batch mode (1–100 events); each event's `source` and `id` are its idempotency key. */
  async sendCloudEvents(events: readonly CloudEventInput[], opts: { signal?: AbortSignal } = {}): Promise<Array<Omit<Accepted, "idempotency_key">>> {
    const r = await this.http.request<{ data: Array<{ id: string; status: "accepted"; received_at: string; replayed: boolean }> }>("POST", "/events/batch", {
      rawBody: JSON.stringify(events.map(toStructured)),
      contentType: CLOUDEVENT_BATCH_CONTENT_TYPE,
      signal: opts.signal,
    });
    if (r.status !== 202) throw new TriggersError("some events of the batch were not accepted; resend the batch (source and id keep it exactly-once)", r.status, "batch_partially_accepted");
    return r.body.data.map(({ id, status, received_at, replayed }) => ({ id, status, received_at, replayed }));
  }

  /** GET /inbox in lease mode, answered as CloudEvents: ack each with `triggersid` and `triggerslease`. */
  async leaseCloudEvents(req: LeaseRequest = {}): Promise<{ events: DeliveredCloudEvent[]; has_more: boolean }> {
    const r = await this.http.request<DeliveredCloudEvent[]>("GET", "/inbox", {
      query: { subscription: req.subscription, limit: req.limit, visibility_timeout: req.visibilityTimeout, wait_seconds: req.waitSeconds, type: req.type, source: req.source, tag: req.tags, since: req.since, until: req.until },
      headers: { Accept: CLOUDEVENT_BATCH_CONTENT_TYPE },
      extraTimeoutMs: (req.waitSeconds ?? 0) * 1000,
      signal: req.signal,
    });
    return { events: r.body, has_more: r.headers.get("triggers-has-more") === "true" };
  }

  /** GET /events/{id} as a CloudEvent (the stored event; 404 while it is still on its way to the database). */
  async getCloudEvent(id: string, opts: { signal?: AbortSignal } = {}): Promise<DeliveredCloudEvent> {
    const r = await this.http.request<DeliveredCloudEvent & { status?: string }>("GET", `/events/${encodeURIComponent(id)}`, { headers: { Accept: CLOUDEVENT_CONTENT_TYPE }, signal: opts.signal });
    if (!r.headers.get("content-type")?.startsWith(CLOUDEVENT_CONTENT_TYPE)) throw new TriggersError("the event is not stored yet", 404, "not_found");
    return r.body;
  }

  /** GET /inbox (lease mode): leases up to `limit` events, long-polling up to `waitSeconds` when there are none. Answers the API's page, `{data, has_more}`. */
  async lease(req: LeaseRequest = {}): Promise<InboxPage> {
    const r = await this.http.request<InboxPage>("GET", "/inbox", {
      query: {
        subscription: req.subscription,
        limit: req.limit,
        visibility_timeout: req.visibilityTimeout,
        wait_seconds: req.waitSeconds,
        type: req.type,
        source: req.source,
        tag: req.tags,
        since: req.since,
        until: req.until,
      },
      extraTimeoutMs: (req.waitSeconds ?? 0) * 1000,
      // A lease whose answer was lost is not handed to anyone and expires; asking again is safe.
      signal: req.signal,
    });
    return { data: r.body.data, has_more: r.body.has_more };
  }

  /** POST /events/{id}/ack. With `leaseId`, 409 lease_expired unless it is the current lease; without, 409 not_delivered for an event no consumer leased. */
  async ack(id: string, leaseId?: string, opts: InboxCallOptions = {}): Promise<void> {
    await this.http.request("POST", `/events/${encodeURIComponent(id)}/ack`, { query: { subscription: opts.subscription }, body: leaseId ? { lease_id: leaseId } : {}, signal: opts.signal });
  }

  /** POST /events/ack with {leases}: one result per item, in order. */
  async ackLeases(leases: ReadonlyArray<{ id: string; lease_id: string }>, opts: InboxCallOptions = {}): Promise<LeaseAckResult[]> {
    const r = await this.http.request<{ results: LeaseAckResult[] }>("POST", "/events/ack", { query: { subscription: opts.subscription }, body: { leases }, signal: opts.signal });
    return r.body.results;
  }

  /** POST /events/{id}/nack: ends the lease; the event is deliverable again after `delaySeconds`. */
  async nack(id: string, leaseId: string, delaySeconds = 0, opts: InboxCallOptions = {}): Promise<{ id: string; status: string; available_at: string }> {
    const r = await this.http.request<{ id: string; status: string; available_at: string }>("POST", `/events/${encodeURIComponent(id)}/nack`, {
      query: { subscription: opts.subscription },
      body: { lease_id: leaseId, delay_seconds: delaySeconds },
      signal: opts.signal,
    });
    return r.body;
  }

  /** POST /events/{id}/extend: the lease now ends `visibilityTimeout` seconds from now. */
  async extend(id: string, leaseId: string, visibilityTimeout: number, opts: InboxCallOptions = {}): Promise<{ id: string; status: string; lease_id: string; lease_expires_at: string }> {
    const r = await this.http.request<{ id: string; status: string; lease_id: string; lease_expires_at: string }>("POST", `/events/${encodeURIComponent(id)}/extend`, {
      query: { subscription: opts.subscription },
      body: { lease_id: leaseId, visibility_timeout: visibilityTimeout },
      signal: opts.signal,
    });
    return r.body;
  }
}
