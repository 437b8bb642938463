import { HttpTransport, type ClientOptions } from "./http";

/** An event to send (the POST /events envelope). */
export interface EventInput {
  readonly type: string;
  readonly payload: unknown;
  readonly source?: string;
  readonly tags?: readonly string[];
  /** ISO 8601 date or date-time. */
  readonly occurred_at?: string;
}

/** What the API answers for an accepted event. */
export interface Accepted {
  readonly id: string;
  readonly status: string;
  readonly received_at: string;
  /** True when an Idempotency-Key matched an earlier send and nothing new was queued. */
  readonly replayed: boolean;
}

/** A stored event as GET /inbox hands it out. */
export interface InboxEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string | null;
  readonly payload: unknown;
  readonly tags: string[];
  readonly occurred_at: string | null;
  readonly received_at: string;
  readonly stored_at: string;
  readonly status: "pending" | "delivered" | "acknowledged" | "dead";
  readonly delivery_count: number;
  readonly lease_id: string | null;
  readonly leased_at: string | null;
  readonly lease_expires_at: string | null;
  readonly acknowledged_at: string | null;
  readonly dead_at: string | null;
}

/** Filters of GET /inbox. */
export interface InboxFilter {
  readonly type?: string;
  readonly source?: string;
  readonly tags?: readonly string[];
  readonly since?: string;
  readonly until?: string;
}

export interface LeaseRequest extends InboxFilter {
  /** Events per answer (1–500, default 50). */
  readonly limit?: number;
  /** Lease length, seconds (1–3600; default the server's, 30). */
  readonly visibilityTimeout?: number;
  /** Long polling: seconds to wait for an event when none is deliverable (0–20). */
  readonly waitSeconds?: number;
  readonly signal?: AbortSignal;
}

export interface LeaseAckResult {
  readonly id: string;
  readonly lease_id: string;
  readonly status: "acknowledged" | "lease_expired" | "not_found";
}

/**
 * The API client: producers send events; the inbox calls (lease, ack, nack, extend) are what
 * Consumer is built on, usable directly too. Every call has a deadline; 429 and 503 are retried
 * with backoff honouring Retry-After. A send whose answer was lost (network error, timeout) is
 * retried only when it carries an Idempotency-Key, because only then can a repeat not duplicate it.
 */
export class TriggersClient {
  readonly http: HttpTransport;

  constructor(opts: ClientOptions) {
    this.http = new HttpTransport(opts);
  }

  /** POST /events. With `idempotencyKey`, a repeat of the same event is answered with the first id (replayed). */
  async send(event: EventInput, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Accepted> {
    const r = await this.http.request<{ id: string; status: string; received_at: string }>("POST", "/events", {
      body: event,
      headers: opts.idempotencyKey ? { "Idempotency-Key": opts.idempotencyKey } : {},
      idempotent: opts.idempotencyKey !== undefined,
      signal: opts.signal,
    });
    return { ...r.body, replayed: r.headers.get("idempotent-replayed") === "true" };
  }

  /**
   * POST /events/batch: 1–100 events, all accepted or none. Each may carry its own idempotency key
   * (`idempotencyKey`); the batch is retried after a lost answer only when every event has one.
   */
  async sendBatch(events: ReadonlyArray<EventInput & { idempotencyKey?: string }>, opts: { signal?: AbortSignal } = {}): Promise<Accepted[]> {
    const body = { events: events.map(({ idempotencyKey, ...e }) => (idempotencyKey ? { ...e, idempotency_key: idempotencyKey } : e)) };
    const r = await this.http.request<{ data: Accepted[] }>("POST", "/events/batch", {
      body,
      idempotent: events.length > 0 && events.every((e) => e.idempotencyKey !== undefined),
      signal: opts.signal,
    });
    return r.body.data;
  }

  /** GET /inbox (lease mode): leases up to `limit` events, long-polling up to `waitSeconds` when there are none. */
  async lease(req: LeaseRequest = {}): Promise<{ events: InboxEvent[]; hasMore: boolean }> {
    const r = await this.http.request<{ data: InboxEvent[]; has_more: boolean }>("GET", "/inbox", {
      query: {
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
      idempotent: true,
      signal: req.signal,
    });
    return { events: r.body.data, hasMore: r.body.has_more };
  }

  /** POST /events/{id}/ack. With `leaseId`, 409 lease_expired unless it is still the current lease. */
  async ack(id: string, leaseId?: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.http.request("POST", `/events/${encodeURIComponent(id)}/ack`, { body: leaseId ? { lease_id: leaseId } : {}, idempotent: true, signal: opts.signal });
  }

  /** POST /events/ack with {leases}: one result per item, in order. */
  async ackLeases(leases: ReadonlyArray<{ id: string; lease_id: string }>, opts: { signal?: AbortSignal } = {}): Promise<LeaseAckResult[]> {
    const r = await this.http.request<{ results: LeaseAckResult[] }>("POST", "/events/ack", { body: { leases }, idempotent: true, signal: opts.signal });
    return r.body.results;
  }

  /** POST /events/{id}/nack: ends the lease; the event is deliverable again after `delaySeconds`. */
  async nack(id: string, leaseId: string, delaySeconds = 0, opts: { signal?: AbortSignal } = {}): Promise<{ available_at: string }> {
    const r = await this.http.request<{ available_at: string }>("POST", `/events/${encodeURIComponent(id)}/nack`, {
      body: { lease_id: leaseId, delay_seconds: delaySeconds },
      idempotent: true,
      signal: opts.signal,
    });
    return r.body;
  }

  /** POST /events/{id}/extend: the lease now ends `visibilityTimeout` seconds from now. */
  async extend(id: string, leaseId: string, visibilityTimeout: number, opts: { signal?: AbortSignal } = {}): Promise<{ lease_expires_at: string }> {
    const r = await this.http.request<{ lease_expires_at: string }>("POST", `/events/${encodeURIComponent(id)}/extend`, {
      body: { lease_id: leaseId, visibility_timeout: visibilityTimeout },
      idempotent: true,
      signal: opts.signal,
    });
    return r.body;
  }
}
