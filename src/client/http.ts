import { setTimeout as delay } from "node:timers/promises";
/** HTTP plumbing of the client library: auth, deadlines, typed errors, retries on 429/503. */

export interface ClientOptions {
  /** Base URL of the Triggers API, e.g. http://127.0.0.1:3000. */
  readonly baseUrl: string;
  /** An API key (trg_…) of one tenant. */
  readonly apiKey: string;
  /** Deadline of each HTTP request, ms (a long poll gets its wait on top). Default 10 000. */
  readonly requestTimeoutMs?: number;
  /** Retries after a 429 or 503 (and, for requests safe to repeat, a network error or timeout). Default 5. */
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
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly query?: Record<string, string | number | readonly string[] | undefined>;
  /** Extra deadline allowance, ms (a long poll's wait). */
  readonly extraTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** True when repeating the request after a lost answer cannot do harm (reads, acks, keyed sends). */
  readonly idempotent?: boolean;
}

/** Waits `ms`; an abort rejects with the client's "aborted" error. */
const sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
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

/** Shared request logic of TriggersClient and Consumer. */
export class HttpTransport {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly opts: ClientOptions) {
    if (!opts.baseUrl) throw new TypeError("baseUrl is required");
    if (!opts.apiKey) throw new TypeError("apiKey is required");
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
  }

  /** Sends a request; retries 429/503 honouring Retry-After; resolves with the parsed JSON body of a 2xx answer. */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<{ status: number; headers: Headers; body: T }> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, item);
      else url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${this.opts.apiKey}`, ...o.headers };
    let payload: string | undefined;
    if (o.body !== undefined) {
      payload = JSON.stringify(o.body);
      headers["Content-Type"] = "application/json";
    }
    for (let attempt = 0; ; attempt++) {
      let err: TriggersError;
      try {
        const timeout = AbortSignal.timeout(this.timeoutMs + (o.extraTimeoutMs ?? 0));
        const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
        const res = await this.fetchImpl(url, { method, headers, body: payload, signal });
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
      const retryable = err.status === 429 || err.status === 503 || (err.status === 0 && o.idempotent === true);
      if (!retryable || attempt >= this.maxRetries) throw err;
      const backoff = Math.random() * Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
      const wait = err.retryAfterSeconds !== undefined ? Math.min(this.retryMaxMs, err.retryAfterSeconds * 1000) : backoff;
      await sleep(wait, o.signal);
    }
  }
}
