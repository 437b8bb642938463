import type { PrismaClient } from "../generated/prisma/client";
import type { Logger } from "../observability/logger";
import type { Listener, Database } from "../store/database";
import { PROBES_PER_STATEMENT, probeDeliverable } from "../store/events/any-deliverable";
import type { InboxFilter } from "../store/events/inbox-filter";
import { notificationChannel, notify } from "../store/notifications";
import { withTimeout } from "../deadline";
import { errorMessage } from "../errors";

/*
 * Wake-ups for long-polling GET /inbox requests (wait_seconds > 0). docs/inbox.md describes the
 * model; in short:
 *
 * Waiters are grouped by what they wait on: (tenant, subscription, filter), a "key". Whatever makes
 * events deliverable raises a notification on the database's LISTEN/NOTIFY channel of this schema
 * (see notifyDeliverable): the ingest worker after its INSERT commits (tenants, types and how many
 * events), a nack (due now or at its delay). Each API process LISTENs on one dedicated connection
 * (Postgres) or through the embedded PGlite instance.
 *
 * A notification wakes, per matching key, only as many waiters as it has events (counting each
 * waiter's `limit`), oldest waiter first. A woken waiter makes one lease attempt; when its batch
 * was full and more is deliverable (has_more), it wakes the next waiter of its key; a woken waiter
 * that leaves before leasing hands its wake-up on. Waiting itself costs no query.
 *
 * What comes due without a notification (a lease's expiry, a nack delay announced by any process)
 * is covered by a timer per process armed to the earliest known due time, and by the safety
 * re-check: every LONG_POLL_RECHECK_MS while someone waits, one statement asks, for every key with
 * waiters, whether a lease would find anything (an indexed LIMIT 1 probe per key, up to
 * PROBES_PER_STATEMENT keys per statement), and wakes one waiter per key that has something. A key
 * found empty is remembered until the next re-check (unless a notification names it), so a new long
 * poll on it waits without a lease of its own: idle waiters cost O(keys) queries per interval, not
 * O(waiters).
 *
 * The LISTEN connection is checked every LISTEN_CHECK_MS with a deadline; one that does not answer
 * is replaced, LISTEN is issued again, and every key is re-checked once.
 */

/** Seconds a GET /inbox may wait at most, as SQS ReceiveMessage's WaitTimeSeconds. */
export const MAX_WAIT_SECONDS = 20;

/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7900;

/** How often the LISTEN connection is checked, ms, and the deadline of each check. */
export const LISTEN_CHECK_MS = 3000;
export const LISTEN_CHECK_TIMEOUT_MS = 2000;
/** How much longer than one re-check interval "known empty" lasts, ms: until the next re-check has answered. */
const EMPTY_SLACK_MS = 1000;
/** Longest pause between attempts to listen again, ms: a return of the database is noticed within it. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** A notification: tenants whose events are (or become at `at`, epoch ms) deliverable. */
interface WakeMessage {
  /** [tenant, event types or null for "any type", number of events (absent = unknown)]; absent = every tenant. */
  readonly t?: Array<[string, string[] | null, number?]>;
  /** When the events become deliverable, epoch ms; absent = now. */
  readonly at?: number;
}

/**
 * Encodes a notification for `tenants` (tenant -> event types, or null for any) and, when known,
 * how many events each tenant has in it; degrades to fit.
 */
export function encodeWake(tenants: ReadonlyMap<string, ReadonlySet<string> | null>, at?: Date, counts?: ReadonlyMap<string, number>): string {
  const base = at ? { at: at.getTime() } : {};
  const entry = (t: string, types: ReadonlySet<string> | null) => {
    const n = counts?.get(t);
    return n === undefined ? [t, types ? [...types] : null] : [t, types ? [...types] : null, n];
  };
  const full = JSON.stringify({ ...base, t: [...tenants].map(([t, types]) => entry(t, types)) });
  if (full.length <= MAX_PAYLOAD) return full;
  const tenantsOnly = JSON.stringify({ ...base, t: [...tenants.keys()].map((t) => entry(t, null)) });
  if (tenantsOnly.length <= MAX_PAYLOAD) return tenantsOnly;
  return JSON.stringify(base); // everyone
}

/**
 * Raises a wake-up for waiters of these tenants on every API process using this schema. One
 * statement; the notification is delivered when it commits (at once outside a transaction).
 * `counts` (events per tenant) bounds how many waiters it wakes; without it, one per key.
 */
export async function notifyDeliverable(prisma: PrismaClient, tenants: ReadonlyMap<string, ReadonlySet<string> | null>, at?: Date, counts?: ReadonlyMap<string, number>): Promise<void> {
  if (tenants.size === 0) return;
  await notify(prisma, encodeWake(tenants, at, counts));
}

/** What ended a wait. */
export type WakeReason = "wake" | "timeout" | "abort" | "closed";

/** What a long poll waits on: the key of its group, and how much one lease of it takes. */
export interface WaitKey {
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly filter: InboxFilter;
  /** Events one lease attempt of this waiter takes at most. */
  readonly limit: number;
}

/** A registered waiter: one GET /inbox request that waits. */
export interface Waiter {
  /** True while the waiter's key is known to have nothing deliverable: its first lease can be skipped. */
  knownEmpty(): boolean;
  /** Call right before a lease attempt; pass what it answers to result(). */
  attempt(): number;
  /** The outcome of a lease attempt (events leased, and whether more were deliverable). */
  result(token: number, leased: number, hasMore: boolean): void;
  /** Waits until woken (or woken since the last wait), the deadline (epoch ms), an abort, or close. */
  wait(deadline: number, signal: AbortSignal): Promise<WakeReason>;
  /** Removes the waiter; call once, when the request is answered. A wake-up it did not use goes to the next waiter. */
  done(): void;
}

interface Group {
  readonly id: string;
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly filter: InboxFilter;
  /** In arrival order: the oldest waiter is woken first. */
  readonly waiters: Set<WaiterState>;
  /** Bumped by every wake-up of the key, so that an empty answer read before it is not trusted. */
  gen: number;
  /** Until when (epoch ms) the key is known to have nothing deliverable; 0 = unknown. */
  emptyUntil: number;
  /**
   * Events announced for the key and not leased yet (undefined = unknown: a re-check, a due time,
   * or a lease that found more than was announced). A full batch hands on to the next waiter only
   * while this is unknown or above zero: with concurrent leases, has_more can count rows another
   * waiter is taking.
   */
  credit: number | undefined;
  /** The last lease of the key found more than it took: first attempts then run side by side, not one for all. */
  backlog: boolean;
}

interface WaiterState {
  readonly group: Group;
  readonly limit: number;
  /** Woken since its last wait returned. */
  woken: boolean;
  /** Woken, and its lease attempt has not reported yet: the wake-up is this waiter's to use or hand on. */
  holdsWake: boolean;
  /** The key's generation when its running lease attempt started; undefined while none runs. */
  attemptGen: number | undefined;
  resolve: ((reason: WakeReason) => void) | undefined;
}

export interface WakeupsOptions {
  readonly db: Database;
  readonly logger: Logger;
  /** Interval of the safety re-check while someone waits, ms (default 5000). */
  readonly safetyMs?: number;
  /** Bound of each query this module runs, ms (default 5000). */
  readonly queryTimeoutMs?: number;
  /** Interval and deadline of the LISTEN connection's check, ms (defaults LISTEN_CHECK_MS, LISTEN_CHECK_TIMEOUT_MS). */
  readonly listenCheckMs?: number;
  readonly listenCheckTimeoutMs?: number;
  /** Called with the number of waiters whenever it changes (a gauge). */
  readonly onWaiting?: (waiting: number) => void;
}

/** Counters, for metrics and tests. */
export interface WakeupStats {
  /** Waiters woken (each then makes one lease attempt). */
  woken: number;
  /** Of those, woken by the safety re-check. */
  recheckWoken: number;
  /** Notifications received. */
  notifications: number;
  /** Safety re-checks run (each one statement per PROBES_PER_STATEMENT keys). */
  safetyChecks: number;
  /** Statements the safety re-checks ran. */
  recheckStatements: number;
  /** First lease attempts skipped because the key was known to be empty. */
  attemptsSkipped: number;
  /** LISTEN connections replaced after failing their check. */
  listenerReplaced: number;
}

/** The long-poll wake-up hub of one API process. */
export class Wakeups {
  private readonly groups = new Map<string, Group>();
  private readonly byTenant = new Map<string, Set<Group>>();
  /** Earliest known due time per tenant, epoch ms. */
  private readonly due = new Map<string, number>();
  private dueTimer: NodeJS.Timeout | undefined;
  private dueTimerAt = Infinity;
  private safetyTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private listener: Listener | undefined;
  private channel: string | undefined;
  private closed = false;
  private reconnectDelay = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private count = 0;
  readonly stats: WakeupStats = { woken: 0, recheckWoken: 0, notifications: 0, safetyChecks: 0, recheckStatements: 0, attemptsSkipped: 0, listenerReplaced: 0 };
  private readonly safetyMs: number;
  private readonly queryTimeoutMs: number;
  private readonly listenCheckMs: number;
  private readonly listenCheckTimeoutMs: number;

  constructor(private readonly opts: WakeupsOptions) {
    this.safetyMs = opts.safetyMs ?? 5000;
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 5000;
    this.listenCheckMs = opts.listenCheckMs ?? LISTEN_CHECK_MS;
    this.listenCheckTimeoutMs = opts.listenCheckTimeoutMs ?? LISTEN_CHECK_TIMEOUT_MS;
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
    this.armListenCheck();
    try {
      await this.connect();
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, "long-poll wake-up channel unavailable; retrying");
      this.scheduleReconnect();
    }
  }

  private async connect(): Promise<void> {
    if (this.channel === undefined) {
      this.channel = await withTimeout(notificationChannel(this.opts.db.prisma), this.queryTimeoutMs, "channel lookup");
    }
    // The connection can be lost before listen() has even resolved (a database going away while it
    // connects): remembered here, since `listener` does not exist yet.
    let listener: Listener | undefined;
    let lostBeforeReady = false;
    // Bounded by the connection's own deadlines (connect timeout, LISTEN statement timeout).
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
      void listener.close().catch(() => undefined);
      if (!this.closed) throw new Error("connection lost while it was being set up");
      return;
    }
    const recovering = this.reconnectDelay > 0;
    this.listener = listener;
    this.reconnectDelay = 0;
    if (recovering) this.opts.logger.info("long-poll wake-up channel listening again");
    // Anything raised while not listening was missed: every key is re-checked once.
    void this.safetyCheck();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectDelay = Math.min(this.reconnectDelay === 0 ? 200 : this.reconnectDelay * 2, MAX_RECONNECT_DELAY_MS);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((err: unknown) => {
        this.opts.logger.warn({ err: errorMessage(err), retryMs: this.reconnectDelay }, "long-poll wake-up channel reconnect failed");
        this.scheduleReconnect();
      });
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }

  /** Checks the LISTEN connection every listenCheckMs; one that does not answer in time is replaced. */
  private armListenCheck(): void {
    if (this.closed || this.checkTimer) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = undefined;
      void this.checkListener().finally(() => this.armListenCheck());
    }, this.listenCheckMs);
    this.checkTimer.unref();
  }

  /** One liveness check of the LISTEN connection, with a deadline; exported for tests through the class. */
  async checkListener(): Promise<boolean> {
    const listener = this.listener;
    if (!listener || this.closed) return listener !== undefined;
    try {
      await withTimeout(listener.check(), this.listenCheckTimeoutMs, "LISTEN connection check");
      return true;
    } catch (err) {
      if (this.listener !== listener || this.closed) return false;
      this.listener = undefined;
      this.stats.listenerReplaced++;
      this.opts.logger.warn({ err: errorMessage(err) }, "long-poll wake-up channel failed its check; replacing it");
      void listener.close().catch(() => undefined);
      this.reconnectDelay = 0;
      this.scheduleReconnect();
      return false;
    }
  }

  /** Registers a waiter before its first lease attempt, so no wake-up between the attempt and the wait is lost. */
  register(key: WaitKey): Waiter {
    const group = this.groupOf(key);
    const state: WaiterState = { group, limit: Math.max(1, key.limit), woken: false, holdsWake: false, attemptGen: undefined, resolve: undefined };
    group.waiters.add(state);
    this.count++;
    this.opts.onWaiting?.(this.count);
    this.ensureSafetyTimer();
    let removed = false;
    return {
      knownEmpty: () => {
        // Known empty, or another waiter's attempt since the last wake-up is running: its outcome
        // answers for this one too (it hands on through has_more, or on failure).
        const known = group.emptyUntil > Date.now() || (!group.backlog && [...group.waiters].some((w) => w !== state && w.attemptGen === group.gen));
        if (known) this.stats.attemptsSkipped++;
        return known;
      },
      attempt: () => (state.attemptGen = group.gen),
      result: (token, leased, hasMore) => {
        const woken = state.holdsWake;
        state.holdsWake = false;
        state.attemptGen = undefined;
        if (leased === 0 && !hasMore) {
          if (token === group.gen) {
            group.emptyUntil = Date.now() + this.safetyMs + EMPTY_SLACK_MS;
            group.credit = 0;
            group.backlog = false;
          }
          return;
        }
        group.backlog = hasMore;
        if (group.credit !== undefined) group.credit = Math.max(0, group.credit - leased);
        // More than anything announced: its size is unknown from here on.
        if (!woken && hasMore) group.credit = undefined;
        // A full batch with more behind it: the next waiter takes the rest, unless a woken one is on it already.
        if (leased > 0 && hasMore && (group.credit === undefined || group.credit > 0) && ![...group.waiters].some((w) => w.holdsWake)) this.wakeGroup(group, 1, state, false, true);
      },
      wait: (deadline, signal) => this.waitOn(state, deadline, signal),
      done: () => {
        if (removed) return;
        removed = true;
        this.count--;
        this.opts.onWaiting?.(this.count);
        group.waiters.delete(state);
        // A wake-up not used, or an attempt that never reported (it failed, or the client left):
        // the next waiter looks instead.
        const handOn = state.holdsWake || state.attemptGen !== undefined;
        state.holdsWake = false;
        state.attemptGen = undefined;
        state.resolve?.("abort");
        if (handOn) this.wakeGroup(group, 1, undefined, false, true);
        this.forgetIfIdle(group);
      },
    };
  }

  private groupOf(key: WaitKey): Group {
    const f = key.filter;
    const id = JSON.stringify([key.tenantId, key.subscriptionId, f.type ?? null, f.source ?? null, f.tags ? [...f.tags].sort() : null, f.since?.getTime() ?? null, f.until?.getTime() ?? null]);
    let group = this.groups.get(id);
    if (!group) {
      group = { id, tenantId: key.tenantId, subscriptionId: key.subscriptionId, filter: key.filter, waiters: new Set(), gen: 0, emptyUntil: 0, credit: 0, backlog: false };
      this.groups.set(id, group);
      let set = this.byTenant.get(key.tenantId);
      if (!set) this.byTenant.set(key.tenantId, (set = new Set()));
      set.add(group);
    }
    return group;
  }

  /** Drops a group without waiters whose "known empty" has lapsed (nothing left worth remembering). */
  private forgetIfIdle(group: Group): void {
    if (group.waiters.size > 0 || group.emptyUntil > Date.now()) return;
    this.groups.delete(group.id);
    const set = this.byTenant.get(group.tenantId);
    set?.delete(group);
    if (set && set.size === 0) this.byTenant.delete(group.tenantId);
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

  /**
   * A key has (about) `events` deliverable events, or an unknown number (undefined: one waiter is
   * woken, and passes on through has_more). Wakes the oldest waiters not woken yet until their
   * limits cover the events. `except` is not woken (the waiter handing on).
   */
  private wakeGroup(group: Group, events: number | undefined, except?: WaiterState, byRecheck = false, handOn = false): void {
    group.gen++;
    group.emptyUntil = 0;
    if (!handOn) group.credit = events === undefined || group.credit === undefined ? undefined : group.credit + events;
    let left = events ?? 1;
    for (const w of group.waiters) {
      if (left <= 0) break;
      if (w === except || w.woken || w.holdsWake) continue;
      w.woken = true;
      w.holdsWake = true;
      this.stats.woken++;
      if (byRecheck) this.stats.recheckWoken++;
      left -= events === undefined ? left : w.limit;
      w.resolve?.("wake");
    }
  }

  /** Wakes waiters of a tenant whose type filter could match `types` (null = any type), for `events` events (undefined = unknown). */
  wakeTenant(tenantId: string, types: readonly string[] | null = null, events?: number): void {
    const set = this.byTenant.get(tenantId);
    if (!set) return;
    for (const g of [...set]) if (types === null || g.filter.type === undefined || types.includes(g.filter.type)) this.wakeGroup(g, events);
  }

  private wakeAll(): void {
    for (const g of [...this.groups.values()]) this.wakeGroup(g, undefined);
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
      const events = typeof entry[2] === "number" && entry[2] > 0 ? entry[2] : undefined;
      if (at !== undefined && at > Date.now()) this.dueAt(entry[0], at);
      else this.wakeTenant(entry[0], types, events);
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

  /**
   * The shared safety re-check: for every key with waiters (none of them already woken), one
   * indexed probe of whether a lease would find anything, PROBES_PER_STATEMENT keys per statement.
   * Wakes one waiter per key that has something (it hands on through has_more); remembers the others
   * as empty until the next re-check.
   */
  private async safetyCheck(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    for (const g of [...this.groups.values()]) this.forgetIfIdle(g);
    const keys = [...this.groups.values()].filter((g) => g.waiters.size > 0 && ![...g.waiters].some((w) => w.holdsWake));
    if (keys.length === 0) return;
    this.stats.safetyChecks++;
    for (let i = 0; i < keys.length && !this.closed; i += PROBES_PER_STATEMENT) {
      const chunk = keys.slice(i, i + PROBES_PER_STATEMENT);
      const gens = chunk.map((g) => g.gen);
      this.stats.recheckStatements++;
      try {
        const found = await withTimeout(
          probeDeliverable(this.opts.db.prisma, chunk.map((g) => ({ tenantId: g.tenantId, subscriptionId: g.subscriptionId, filter: g.filter }))),
          this.queryTimeoutMs,
          "safety re-check",
        );
        chunk.forEach((g, j) => {
          if (found.has(j)) this.wakeGroup(g, undefined, undefined, true);
          else if (g.gen === gens[j]) g.emptyUntil = now + this.safetyMs + EMPTY_SLACK_MS;
        });
      } catch (err) {
        this.opts.logger.warn({ err: errorMessage(err) }, "long-poll safety re-check failed");
        return;
      }
    }
  }

  /** Answers every waiter now ("closed") and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const g of this.groups.values()) for (const s of g.waiters) s.resolve?.("closed");
    for (const t of [this.dueTimer, this.safetyTimer, this.reconnectTimer, this.checkTimer]) if (t) clearTimeout(t);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.close().catch(() => undefined);
  }

  /** True once close() was called: requests answer without waiting. */
  get isClosed(): boolean {
    return this.closed;
  }
}

