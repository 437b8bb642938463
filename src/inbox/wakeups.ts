import type { PrismaClient } from "../generated/prisma/client";
import type { Logger } from "../observability/logger";
import type { Listener, Database } from "../store/database";
import { withTimeout } from "../deadline";

/*
 * Wake-ups for long-polling GET /inbox requests (wait_seconds > 0).
 *
 * One channel per API process. Whatever makes events deliverable raises a notification on the
 * database's LISTEN/NOTIFY channel of this schema (see notifyDeliverable):
 * - the ingest worker, right after its INSERT commits (one pg_notify per batch, naming the tenants
 *   and event types stored);
 * - a nack (the event is due now or at its delay, which the notification carries).
 * Each API process LISTENs on one dedicated connection (Postgres) or through the embedded PGlite
 * instance, and wakes only the waiters whose tenant (and `type` filter, when the notification names
 * types) could match. A woken waiter makes one lease attempt; waiting itself costs no query.
 *
 * Things that come due without a notification are covered by a timer per process armed to the
 * earliest known due time: leases this process handed out (their expiry makes the event
 * deliverable again) and nack delays announced by any process. A slow safety re-check (one query
 * per process per interval, only while someone waits) reads the earliest due time of the waiting
 * tenants, which also catches expiries of leases handed out by other processes and notifications
 * lost while the listening connection was down.
 */

/** Seconds a GET /inbox may wait at most, as SQS ReceiveMessage's WaitTimeSeconds. */
export const MAX_WAIT_SECONDS = 20;

/** The channel name of the current schema: a plain identifier shorter than Postgres's 63 bytes. */
const CHANNEL_SQL = "'triggers_' || left(md5(current_schema()), 16)";

/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7900;

/** A notification: tenants whose events are (or become at `at`, epoch ms) deliverable. */
interface WakeMessage {
  /** [tenant, event types or null for "any type"]; absent = every tenant. */
  readonly t?: Array<[string, string[] | null]>;
  /** When the events become deliverable, epoch ms; absent = now. */
  readonly at?: number;
}

/** Encodes a notification for `tenants` (tenant -> event types, or null for any), degrading to fit. */
export function encodeWake(tenants: ReadonlyMap<string, ReadonlySet<string> | null>, at?: Date): string {
  const base = at ? { at: at.getTime() } : {};
  const full = JSON.stringify({ ...base, t: [...tenants].map(([t, types]) => [t, types ? [...types] : null]) });
  if (full.length <= MAX_PAYLOAD) return full;
  const tenantsOnly = JSON.stringify({ ...base, t: [...tenants.keys()].map((t) => [t, null]) });
  if (tenantsOnly.length <= MAX_PAYLOAD) return tenantsOnly;
  return JSON.stringify(base); // everyone
}

/**
 * Raises a wake-up for waiters of these tenants on every API process using this schema. One
 * statement; the notification is delivered when it commits (at once outside a transaction).
 */
export async function notifyDeliverable(prisma: PrismaClient, tenants: ReadonlyMap<string, ReadonlySet<string> | null>, at?: Date): Promise<void> {
  if (tenants.size === 0) return;
  await prisma.$executeRawUnsafe(`SELECT pg_notify(${CHANNEL_SQL}, $1)`, encodeWake(tenants, at));
}

/** What ended a wait. */
export type WakeReason = "wake" | "timeout" | "abort" | "closed";

/** A registered waiter: one GET /inbox request that found nothing. */
export interface Waiter {
  /** Waits until woken (or woken since the last wait), the deadline (epoch ms), an abort, or close. */
  wait(deadline: number, signal: AbortSignal): Promise<WakeReason>;
  /** Removes the waiter; call once, when the request is answered. */
  done(): void;
}

interface WaiterState {
  readonly tenantId: string;
  readonly type: string | undefined;
  woken: boolean;
  resolve: ((reason: WakeReason) => void) | undefined;
}

export interface WakeupsOptions {
  readonly db: Database;
  readonly logger: Logger;
  /** Interval of the safety re-check while someone waits, ms (default 5000). */
  readonly safetyMs?: number;
  /** Bound of each query this module runs, ms (default 5000). */
  readonly queryTimeoutMs?: number;
}

/** Counters, for metrics and tests. */
export interface WakeupStats {
  /** Waiters woken (each then makes one lease attempt). */
  woken: number;
  /** Notifications received. */
  notifications: number;
  /** Safety re-checks run. */
  safetyChecks: number;
}

/** The long-poll wake-up hub of one API process. */
export class Wakeups {
  private readonly byTenant = new Map<string, Set<WaiterState>>();
  /** Earliest known due time per tenant, epoch ms. */
  private readonly due = new Map<string, number>();
  private dueTimer: NodeJS.Timeout | undefined;
  private dueTimerAt = Infinity;
  private safetyTimer: NodeJS.Timeout | undefined;
  private listener: Listener | undefined;
  private channel: string | undefined;
  private closed = false;
  private reconnectDelay = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private count = 0;
  readonly stats: WakeupStats = { woken: 0, notifications: 0, safetyChecks: 0 };
  private readonly safetyMs: number;
  private readonly queryTimeoutMs: number;

  constructor(private readonly opts: WakeupsOptions) {
    this.safetyMs = opts.safetyMs ?? 5000;
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 5000;
  }

  /** Waiters registered now. */
  get waiting(): number {
    return this.count;
  }

  /** True while the channel is listening (notifications arrive). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Starts listening. A failure is logged and retried in the background (waiters then rely on the safety re-check). */
  async start(): Promise<void> {
    if (this.closed) return;
    try {
      await this.connect();
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, "long-poll wake-up channel unavailable; retrying");
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    if (this.channel === undefined) {
      const rows = await withTimeout(this.opts.db.prisma.$queryRawUnsafe<Array<{ ch: string }>>(`SELECT ${CHANNEL_SQL} AS ch`), this.queryTimeoutMs, "channel lookup");
      this.channel = rows[0]!.ch;
    }
    // The connection can be lost before listen() has even resolved (a database going away while it
    // connects): remembered here, since `listener` does not exist yet.
    let listener: Listener | undefined;
    let lostBeforeReady = false;
    listener = await this.opts.db.listen(this.channel, (payload) => this.onNotification(payload), () => {
      if (listener === undefined) {
        lostBeforeReady = true;
        return;
      }
      if (this.listener !== listener) return;
      this.listener = undefined;
      if (this.closed) return;
      this.opts.logger.warn("long-poll wake-up channel lost; reconnecting");
      this.scheduleReconnect();
    });
    if (this.closed || lostBeforeReady) {
      await listener.close().catch(() => undefined);
      if (!this.closed) throw new Error("connection lost while it was being set up");
      return;
    }
    this.listener = listener;
    this.reconnectDelay = 0;
    // Anything raised while not listening was missed: let every waiter look once.
    this.wakeAll();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectDelay = Math.min(this.reconnectDelay === 0 ? 200 : this.reconnectDelay * 2, 10_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((err: unknown) => {
        this.opts.logger.warn({ err: errorMessage(err), retryMs: this.reconnectDelay }, "long-poll wake-up channel reconnect failed");
        this.scheduleReconnect();
      });
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }

  /** Registers a waiter before its first lease attempt, so no wake-up between the attempt and the wait is lost. */
  register(tenantId: string, type: string | undefined): Waiter {
    const state: WaiterState = { tenantId, type, woken: false, resolve: undefined };
    let set = this.byTenant.get(tenantId);
    if (!set) this.byTenant.set(tenantId, (set = new Set()));
    set.add(state);
    this.count++;
    this.ensureSafetyTimer();
    let removed = false;
    return {
      wait: (deadline, signal) => this.waitOn(state, deadline, signal),
      done: () => {
        if (removed) return;
        removed = true;
        this.count--;
        const s = this.byTenant.get(tenantId);
        s?.delete(state);
        if (s && s.size === 0) this.byTenant.delete(tenantId);
        state.resolve?.("abort");
      },
    };
  }

  private waitOn(state: WaiterState, deadline: number, signal: AbortSignal): Promise<WakeReason> {
    if (this.closed) return Promise.resolve("closed");
    if (signal.aborted) return Promise.resolve("abort");
    if (state.woken) {
      state.woken = false;
      return Promise.resolve("wake");
    }
    const ms = deadline - Date.now();
    if (ms <= 0) return Promise.resolve("timeout");
    return new Promise<WakeReason>((resolve) => {
      const timer = setTimeout(() => finish("timeout"), ms);
      const onAbort = () => finish("abort");
      signal.addEventListener("abort", onAbort, { once: true });
      const finish = (reason: WakeReason) => {
        if (state.resolve !== finish) return;
        state.resolve = undefined;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (reason === "wake") state.woken = false;
        resolve(reason);
      };
      state.resolve = finish;
    });
  }

  private wakeState(state: WaiterState): void {
    state.woken = true;
    this.stats.woken++;
    state.resolve?.("wake");
  }

  /** Wakes the waiters of a tenant whose type filter could match `types` (null = any type). */
  wakeTenant(tenantId: string, types: readonly string[] | null = null): void {
    const set = this.byTenant.get(tenantId);
    if (!set) return;
    for (const s of set) if (types === null || s.type === undefined || types.includes(s.type)) this.wakeState(s);
  }

  private wakeAll(): void {
    for (const set of this.byTenant.values()) for (const s of set) this.wakeState(s);
  }

  /** Notes that events of a tenant become deliverable at `at` (a lease's expiry, a nack's delay). */
  dueAt(tenantId: string, at: Date | number): void {
    if (this.closed) return;
    const ms = typeof at === "number" ? at : at.getTime();
    if (ms <= Date.now()) {
      this.wakeTenant(tenantId);
      return;
    }
    const known = this.due.get(tenantId);
    if (known !== undefined && known <= ms) return;
    this.due.set(tenantId, ms);
    if (ms < this.dueTimerAt) this.armDueTimer(ms);
  }

  private armDueTimer(at: number): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueTimerAt = at;
    // A few ms late, so the database's now() has passed the due time when the woken lease runs.
    this.dueTimer = setTimeout(() => this.onDue(), Math.max(0, at - Date.now()) + 5);
    this.dueTimer.unref();
  }

  private onDue(): void {
    this.dueTimer = undefined;
    this.dueTimerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [tenant, at] of this.due) {
      if (at <= now) {
        this.due.delete(tenant);
        this.wakeTenant(tenant);
      } else if (at < next) next = at;
    }
    if (next < Infinity) this.armDueTimer(next);
  }

  private onNotification(payload: string): void {
    this.stats.notifications++;
    let msg: WakeMessage;
    try {
      msg = JSON.parse(payload) as WakeMessage;
    } catch {
      this.wakeAll();
      return;
    }
    const at = typeof msg.at === "number" ? msg.at : undefined;
    if (!Array.isArray(msg.t)) {
      if (at !== undefined && at > Date.now()) for (const tenant of this.byTenant.keys()) this.dueAt(tenant, at);
      else this.wakeAll();
      return;
    }
    for (const entry of msg.t) {
      if (!Array.isArray(entry) || typeof entry[0] !== "string") continue;
      const types = Array.isArray(entry[1]) ? entry[1].filter((x): x is string => typeof x === "string") : null;
      if (at !== undefined && at > Date.now()) this.dueAt(entry[0], at);
      else this.wakeTenant(entry[0], types);
    }
  }

  private ensureSafetyTimer(): void {
    if (this.safetyTimer || this.closed) return;
    this.safetyTimer = setTimeout(() => {
      this.safetyTimer = undefined;
      void this.safetyCheck().finally(() => {
        if (this.count > 0) this.ensureSafetyTimer();
      });
    }, this.safetyMs);
    this.safetyTimer.unref();
  }

  /** One query for all waiting tenants: wakes those with something due now and arms the timer for the rest. */
  private async safetyCheck(): Promise<void> {
    const tenants = [...this.byTenant.keys()];
    if (tenants.length === 0 || this.closed) return;
    this.stats.safetyChecks++;
    try {
      const rows = await withTimeout(
        this.opts.db.prisma.$queryRawUnsafe<Array<{ tenant_id: string; due: Date }>>(
          `SELECT tenant_id, min(available_at) AS due FROM deliveries
           WHERE tenant_id = ANY($1::text[]) AND status IN ('pending', 'delivered')
           GROUP BY tenant_id`,
          tenants,
        ),
        this.queryTimeoutMs,
        "safety re-check",
      );
      for (const r of rows) this.dueAt(r.tenant_id, new Date(r.due));
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, "long-poll safety re-check failed");
    }
  }

  /** Answers every waiter now ("closed") and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const set of this.byTenant.values()) for (const s of set) s.resolve?.("closed");
    for (const t of [this.dueTimer, this.safetyTimer, this.reconnectTimer]) if (t) clearTimeout(t);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close().catch(() => undefined);
  }

  /** True once close() was called: requests answer without waiting. */
  get isClosed(): boolean {
    return this.closed;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
