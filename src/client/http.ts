import { setTimeout as delay } from "node:timers/promises";
/** HTTP plumbing of the client library: auth, deadlines, typed errors, retries on 429/502/503/504 and lost answers. */

export interface ClientOptions {
  /** Base URL of the Triggers API, e.g. http://127.0.0.1:3000. */
  readonly baseUrl: string;
  /** An API key (trg_…) of one tenant. */
  readonly apiKey: string;
  /** Deadline of each HTTP attempt, ms (a long poll gets its wait on top). Default 10 000. */
  readonly requestTimeoutMs?: number;
  /** Deadline of a whole call, every attempt and wait between them included, ms (a long poll gets its wait on top). Default 60 000. */
  readonly totalTimeoutMs?: number;
  /** Retries after a 429, 502, 503 or 504, a network error or a timeout (a batch's rounds of refused items count too). Default 5. */
  readonly maxRetries?: number;
  /** First backoff, ms; doubles per retry with full jitter when no Retry-After is given. Default 200. */
  readonly retryBaseMs?: number;
  /** Longest single wait between retries, ms, also capping Retry-After. Default 30 000. */
  readonly retryMaxMs?: number;
  /** A fetch implementation (default the global fetch). */
  readonly fetch?: typeof fetch;
}

/** An error answer of the API ({"error":{code,message,details}}), or a failure to get one. */
export class TriggersError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when no answer arrived (network error, timeout). */
    readonly status: number,
    /** The API's error code (validation_failed, lease_expired, rate_limited, …), or network_error / timeout / aborted. */
    readonly code: string,
    readonly details: unknown[] = [],
    /** Seconds the server asked to wait (Retry-After), when it did. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "TriggersError";
  }

  /** True when the same request, repeated later, may succeed (429, 502, 503, 504, no answer). Every request of this library is safe to repeat. */
  get retryable(): boolean {
    return isRetryableStatus(this.status) && this.code !== "aborted";
  }
}

/** Statuses worth repeating a request for: 0 (no answer), 429, 502, 503 (service_unavailable, enqueue_outcome_unknown), 504. */
export const isRetryableStatus = (status: number): boolean => status === 0 || status === 429 || status === 502 || status === 503 || status === 504;

export interface RequestOptions {
  readonly body?: unknown;
  /** A body sent as it is, instead of `body` as JSON (a binary-mode CloudEvent's data, a structured one's JSON). */
  readonly rawBody?: string | Uint8Array;
  /** The Content-Type of the body (default application/json for `body`, application/octet-stream for `rawBody`). */
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string | number | readonly string[] | undefined>;
  /** Extra deadline allowance, ms (a long poll's wait). */
  readonly extraTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** The budget to spend; a call that retries across several requests (sendBatch) shares one. Default a fresh one. */
  readonly budget?: RetryBudget;
}

/** Waits `ms`; an abort rejects with the client's "aborted" error. */
export const sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch {
    throw new TriggersError("aborted", 0, "aborted");
  }
};

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\s*-?\d+(\.\d+)?\s*$/.test(value)) {
    const n = Number(value);
    return n >= 0 ? n : undefined;
  }
  if (!/[A-Za-z]/.test(value)) return undefined; // an HTTP date names its day and month
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - now) / 1000);
}

/** Retries left and the overall deadline of one call. */
export class RetryBudget {
  private retriesUsed = 0;
  readonly deadline: number;

  constructor(
    private readonly transport: HttpTransport,
    extraMs = 0,
  ) {
    this.deadline = Date.now() + transport.totalTimeoutMs + extraMs;
  }

  /** Milliseconds until the deadline. */
  remainingMs(): number {
    return this.deadline - Date.now();
  }

  /**
   * Waits before the next retry after `err` (its Retry-After, else exponential backoff with full
   * jitter) and counts it; throws `err` instead when no retry is left or the wait would pass the deadline.
   */
  async beforeRetry(err: TriggersError, signal?: AbortSignal): Promise<void> {
    if (this.retriesUsed >= this.transport.maxRetries) throw err;
    const backoff = Math.random() * Math.min(this.transport.retryMaxMs, this.transport.retryBaseMs * 2 ** this.retriesUsed);
    const wait = err.retryAfterSeconds !== undefined ? Math.min(this.transport.retryMaxMs, err.retryAfterSeconds * 1000) : backoff;
    // A retry needs time for its own answer too: one that could only start at the deadline is not worth waiting for.
    if (Date.now() + wait >= this.deadline) throw err;
    this.retriesUsed++;
    await sleep(wait, signal);
  }
}

/** Shared request logic of TriggersClient and Consumer. */
export class HttpTransport {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;

  constructor(private readonly opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError("baseUrl is required");
    if (!opts.apiKey) throw new TypeError("apiKey is required");
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.totalTimeoutMs = opts.totalTimeoutMs ?? 60_000;
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    if (!(this.timeoutMs > 0 && this.totalTimeoutMs > 0)) throw new RangeError("requestTimeoutMs and totalTimeoutMs must be positive");
    if (!(this.maxRetries >= 0)) throw new RangeError("maxRetries must be 0 or more");
  }

  /** A retry budget for one call (maxRetries retries, totalTimeoutMs plus `extraMs`). */
  budget(extraMs = 0): RetryBudget {
    return new RetryBudget(this, extraMs);
  }

  /**
   * Sends a request; retries 429/502/503/504 and lost answers (every request of this library is
   * safe to repeat: sends carry an idempotency key) honouring Retry-After, within the budget;
   * resolves with the parsed JSON body of a 2xx answer.
   */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<{ status: number; headers: Headers; body: T }> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, item);
      else url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${this.opts.apiKey}`, ...o.headers };
    let payload: string | Uint8Array | undefined;
    if (o.rawBody !== undefined) {
      payload = o.rawBody;
      headers["Content-Type"] = o.contentType ?? "application/octet-stream";
    } else if (o.body !== undefined) {
      payload = JSON.stringify(o.body);
      headers["Content-Type"] = o.contentType ?? "application/json";
    }
    const extra = o.extraTimeoutMs ?? 0;
    const budget = o.budget ?? this.budget(extra);
    for (;;) {
      let err: TriggersError;
      try {
        const attemptMs = Math.min(this.timeoutMs + extra, budget.remainingMs());
        if (attemptMs <= 0) throw new TriggersError("the call's deadline (totalTimeoutMs) passed", 0, "timeout");
        const timeout = AbortSignal.timeout(attemptMs);
        const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
        const res = await this.fetchImpl(url, { method, headers, body: payload as string | undefined, signal });
        const text = await res.text();
        let parsed: unknown = undefined;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        if (res.ok) return { status: res.status, headers: res.headers, body: parsed as T };
        const e = (parsed as { error?: { code?: string; message?: string; details?: unknown[] } } | undefined)?.error;
        err = new TriggersError(e?.message ?? `HTTP ${res.status}`, res.status, e?.code ?? `http_${res.status}`, e?.details ?? [], parseRetryAfter(res.headers.get("retry-after")));
      } catch (caught) {
        if (caught instanceof TriggersError) throw caught;
        if (o.signal?.aborted) throw new TriggersError("aborted", 0, "aborted");
        const name = (caught as { name?: string }).name;
        const timedOut = name === "TimeoutError";
        err = new TriggersError(timedOut ? "request timed out" : `network error: ${(caught as Error).message}`, 0, timedOut ? "timeout" : "network_error");
      }
      if (!err.retryable) throw err;
      await budget.beforeRetry(err, o.signal);
    }
  }
}
