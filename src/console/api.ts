/*
 * The console's only way to the server: the public HTTP API, same origin, the key in the
 * Authorization header. The key lives in sessionStorage (this tab only), never in a URL or cookie.
 */

const KEY = "triggers.apiKey";

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}
export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}
export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}

export interface ErrorDetail {
  path: string;
  message: string;
}

/** An API error answer: its status and the one error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[],
  ) {
    super(message);
  }
}

export type Query = Record<string, string | string[] | number | undefined>;

function queryString(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) p.append(k, String(item));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** One API call with the stored key; answers the JSON body, throws ApiError on an error status. */
export async function api<T>(method: string, path: string, opts: { query?: Query; body?: unknown; key?: string; signal?: AbortSignal } = {}): Promise<T> {
  const key = opts.key ?? storedKey();
  const headers: Record<string, string> = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const init: RequestInit = { method, headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(path + queryString(opts.query ?? {}), init);
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: ErrorDetail[] } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? "error", e?.message ?? `HTTP ${res.status}`, e?.details ?? []);
  }
  return body as T;
}

/** A delivery's state, as an event (in one subscription) and each of its deliveries show it. */
export interface DeliveryState {
  status: string;
  delivery_count: number;
  leased_at: string | null;
  lease_expires_at: string | null;
  acknowledged_at: string | null;
  dead_at: string | null;
}

export interface EventView extends DeliveryState {
  id: string;
  type: string;
  source: string | null;
  payload: unknown;
  tags: string[];
  occurred_at: string | null;
  received_at: string;
  stored_at: string;
}

export interface DeliveryView extends DeliveryState {
  subscription: string;
}

export interface EventPage {
  data: EventView[];
  next_cursor: string | null;
  tail_cursor: string | null;
}

export interface SubscriptionView {
  name: string;
  filter: { types?: string[] | null; sources?: string[] | null; tags?: string[] | null } | null;
  created_at?: string;
  updated_at?: string;
}

export interface Stats {
  counts: Record<"pending" | "delivered" | "acknowledged" | "dead", { count: number; exact: boolean }>;
  count_limit: number;
  oldest_pending_at: string | null;
  oldest_pending_age_seconds: number | null;
  bucket_seconds: number;
  buckets: Array<{ start: string; received: number; backlog: number; complete: boolean }>;
}
