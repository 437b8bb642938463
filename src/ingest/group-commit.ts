import { setTimeout as sleep } from "node:timers/promises";
import { encodeQueuedEvent, packQueuedEvents, type QueuedEvent } from "../domain/queued-event";
import { notifyDeliverable } from "../inbox/wakeups";
import { SQS_MAX_MESSAGE_BYTES, type SqsQueue } from "../queue/sqs-queue";
import { isStatementTimeout } from "../store/statement-timeout";
import { FanoutWeights } from "./fanout-weights";
import { TenantShares } from "./tenant-shares";
import { type DecodedMessage, type StoreDeps, type StoreMessagesFn } from "./store-messages";
import { errorMessage } from "../errors";

export interface GroupCommitDeps extends StoreDeps {
  readonly queue: SqsQueue;
  /** The store step (storeMessages; tests pass one that fails). */
  readonly store: StoreMessagesFn;
}

export interface GroupCommitOptions {
  /** Visibility timeout of the received messages, seconds: extended while a failing group is held. */
  readonly visibilitySeconds: number;
  /**
   * Rows one statement writes at most, counting each event and each of its deliveries (one per
   * matching subscription): bigger statements amortise the commit, but a statement's time grows with
   * its deliveries, not its events (default 400, i.e. 200 events of tenants with only `default`).
   * A message heavier than this is stored alone.
   */
  readonly maxGroupRows?: number;
  /** Concurrent statements at most, so a slow database sees bounded load from one process (default 2). */
  readonly maxConcurrentCommits?: number;
  /**
   * Rows (as maxGroupRows counts them) one tenant may hold in this process at once (default four times
   * maxGroupRows × maxConcurrentCommits: enough to keep every commit busy). Past it the tenant's
   * further events are sent back to the queue with a delay (TenantShares), so one tenant's backlog
   * cannot stand in front of every other tenant's events.
   */
  readonly maxTenantRows?: number;
}

interface Waiting {
  readonly messages: readonly DecodedMessage[];
  readonly rows: number;
  /** Rows taken from each tenant's share, given back when the group is done. */
  readonly shares: ReadonlyMap<string, number>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The group-commit buffer between the receivers and the store step. What the receivers bring in
 * while a commit is running waits, and the next commit stores it all in one statement (up to
 * `maxGroupRows` rows, at most `maxConcurrentCommits` at a time). After the commit each message
 * whose events are all stored is deleted from SQS and the API processes' long polls are woken,
 * both in the background (`drain()` waits for them): a receiver goes on as soon as its rows are
 * committed.
 *
 * A statement cancelled at the statement timeout is not retried as it is: the group is halved
 * (recursively, then a message's events) until the single event that cannot be stored in time is
 * isolated. Its message is left for the dead-letter queue (not deleted, logged at error, counted in
 * triggers_worker_poison_total) and everything else is stored, so one tenant's fan-out can neither
 * hold other tenants' events nor be retried forever.
 */
export class GroupCommit {
  private waiting: Waiting[] = [];
  private committing = 0;
  private stopping = false;
  private readonly deletes = new Set<Promise<void>>();
  private readonly notifies = new Set<Promise<void>>();
  private readonly maxGroupRows: number;
  private readonly maxConcurrentCommits: number;
  private readonly weights: FanoutWeights;
  private readonly shares: TenantShares;
  private readonly deferLogged = new Map<string, number>();

  constructor(
    private readonly deps: GroupCommitDeps,
    private readonly opts: GroupCommitOptions,
  ) {
    this.maxGroupRows = opts.maxGroupRows ?? 400;
    this.maxConcurrentCommits = opts.maxConcurrentCommits ?? 2;
    this.weights = new FanoutWeights(deps.prisma);
    this.shares = new TenantShares(opts.maxTenantRows ?? 4 * this.maxGroupRows * this.maxConcurrentCommits);
  }

  /**
   * Queues messages for the next group commit; resolves once their rows are committed. Rejects
   * only after `stopRetrying()`, when their group's commit failed: they are left in SQS to
   * reappear after their visibility timeout.
   */
  async commit(received: readonly DecodedMessage[]): Promise<void> {
    const events = received.flatMap((m) => m.events);
    const weights = await this.weights.rowsOf(events);
    const weightOf = new Map(events.map((e, i) => [e, weights[i]!]));
    const taken = await this.takeShares(received, weightOf);
    const shares = taken.shares;
    // A message whose every event went back to the queue has nothing to commit: deleted at once, so
    // its receiver does not wait behind other groups.
    const emptied = taken.messages.filter((m) => m.events.length === 0 && m.invalid === 0);
    if (emptied.length > 0) this.deleteInBackground(emptied.map((m) => m.message.receiptHandle));
    const messages = taken.messages.filter((m) => !emptied.includes(m));
    if (messages.length === 0) return;
    let rows = 0;
    for (const r of shares.values()) rows += r;
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        for (const [t, r] of shares) this.shares.release(t, r);
      };
      this.waiting.push({
        messages,
        rows,
        shares,
        resolve: () => (done(), resolve()),
        reject: (err) => (done(), reject(err)),
      });
      this.startGroups();
    });
  }

  /**
   * Takes each event's rows from its tenant's share. The events of tenants past their share are
   * sent back to the queue with a delay (packed into as few messages as fit), and the received
   * messages go on without them: they are deleted once their other events are committed. If the
   * send fails, nothing is deferred.
   */
  private async takeShares(received: readonly DecodedMessage[], weightOf: ReadonlyMap<QueuedEvent, number>): Promise<{ messages: DecodedMessage[]; shares: Map<string, number> }> {
    const shares = new Map<string, number>();
    const take = (e: QueuedEvent) => shares.set(e.tenant_id, (shares.get(e.tenant_id) ?? 0) + weightOf.get(e)!);
    const now = Date.now();
    const kept: DecodedMessage[] = [];
    const later: QueuedEvent[] = [];
    for (const m of received) for (const e of m.events) this.shares.seen(e.tenant_id, now);
    for (const m of received) {
      const keep: QueuedEvent[] = [];
      let deferred = 0;
      for (const e of m.events) {
        if (this.shares.admit(e.tenant_id, weightOf.get(e)!, now)) {
          keep.push(e);
          take(e);
        } else {
          later.push(e);
          deferred++;
        }
      }
      kept.push(deferred === 0 ? m : { ...m, events: keep });
    }
    if (later.length === 0) return { messages: kept, shares };
    // As few messages as the size limit allows: each resent message costs a send, a receive and a delete.
    const bodies: string[][] = [[]];
    let bytes = 0;
    for (const encoded of later.map(encodeQueuedEvent)) {
      const size = Buffer.byteLength(encoded) + 1; // and its comma
      if (bytes + size > SQS_MAX_MESSAGE_BYTES - 2 && bodies.at(-1)!.length > 0) {
        bodies.push([]);
        bytes = 0;
      }
      bodies.at(-1)!.push(encoded);
      bytes += size;
    }
    const delaySeconds = Math.max(...later.map((e) => this.shares.delaySeconds(e.tenant_id, now)));
    try {
      for (let i = 0; i < bodies.length; i += 10) {
        const outcomes = await this.deps.queue.sendBatch(bodies.slice(i, i + 10).map((b, j) => ({ id: String(j), body: packQueuedEvents(b), delaySeconds })));
        if (outcomes.some((o) => !o.ok)) throw new Error(`the queue refused ${outcomes.filter((o) => !o.ok).length} resent messages`);
      }
    } catch (err) {
      // Stored now after all (a resend that did get through becomes a duplicate the insert skips).
      this.deps.logger.warn({ err: errorMessage(err) }, "could not send events past their tenant's share back to the queue; storing them now");
      for (const e of later) {
        this.shares.force(e.tenant_id, weightOf.get(e)!);
        take(e);
      }
      return { messages: [...received], shares };
    }
    for (const tenant of new Set(later.map((e) => e.tenant_id))) {
      if (now - (this.deferLogged.get(tenant) ?? 0) < 10_000) continue;
      if (this.deferLogged.size > 10_000) this.deferLogged.clear();
      this.deferLogged.set(tenant, now);
      this.deps.logger.info({ tenant, events: later.filter((e) => e.tenant_id === tenant).length, delaySeconds }, "tenant past its share of the worker: deferring its further events to the queue");
    }
    return { messages: kept, shares };
  }

  /** Shutting down: a group whose commit fails from now on is handed back instead of held and retried. */
  stopRetrying(): void {
    this.stopping = true;
  }

  /** Resolves once the deletes and long-poll notifications of committed groups have finished. */
  async drain(): Promise<void> {
    while (this.deletes.size > 0) await Promise.allSettled([...this.deletes]);
    while (this.notifies.size > 0) await Promise.allSettled([...this.notifies]);
  }

  /** Starts a commit of the lightest waiting messages while fewer than the maximum are running. */
  private startGroups(): void {
    // Lighter entries first: a tenant with a big fan-out then costs others at most one commit's wait
    // (its entries are few, bounded by its share), not a queue of its heavy groups. Stable, so equal
    // weights keep their order.
    if (this.waiting.length > 1) this.waiting.sort((a, b) => a.rows - b.rows);
    while (this.committing < this.maxConcurrentCommits && this.waiting.length > 0) {
      const group: Waiting[] = [];
      let rows = 0;
      while (this.waiting.length > 0 && rows + this.waiting[0]!.rows <= this.maxGroupRows) {
        const w = this.waiting.shift()!;
        group.push(w);
        rows += w.rows;
      }
      if (group.length === 0) group.push(this.waiting.shift()!);
      this.committing++;
      void this.commitGroup(group).finally(() => {
        this.committing--;
        this.startGroups();
      });
    }
  }

  /**
   * Stores a group and resolves its receivers. While Postgres is unreachable the group is held and
   * retried with backoff (its receivers wait, so nothing more is received and no message burns its
   * receive count towards the DLQ); the messages' visibility is extended while they wait. Each
   * failed attempt counts once in triggers_worker_errors_total{stage="insert"}.
   */
  private async commitGroup(group: readonly Waiting[]): Promise<void> {
    const messages = group.flatMap((w) => w.messages);
    let held = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const { deletable, announce } = await this.storeSplitting(messages);
        for (const w of group) w.resolve();
        if (announce.length > 0) this.announceStored(announce);
        // Receivers go on as soon as the rows are committed; deletes finish in the background (drain() waits for them).
        this.deleteInBackground(deletable);
        return;
      } catch (err) {
        this.deps.metrics.workerErrors.inc({ stage: "insert" });
        if (this.stopping) {
          // Shutting down: leave the messages to reappear after their visibility timeout.
          for (const w of group) w.reject(err);
          return;
        }
        const backoff = Math.min(100 * 2 ** attempt, 5000);
        if (attempt === 0 || attempt % 10 === 0) {
          this.deps.logger.warn({ err: errorMessage(err), messages: messages.length, attempt, backoffMs: backoff }, "insert failed; holding the batch and retrying");
        }
        await sleep(backoff);
        if (Date.now() - held > (this.opts.visibilitySeconds * 1000) / 2) {
          held = Date.now();
          await this.deps.queue
            .changeVisibility(messages.map((m) => m.message.receiptHandle), this.opts.visibilitySeconds)
            .catch(() => undefined); // SQS may be down too; the messages then simply reappear later
        }
      }
    }
  }

  /**
   * Stores messages with the store step; a part cancelled at the statement timeout is halved and
   * each half stored on its own (a single message's events likewise), down to the one event that
   * times out alone, whose message is then kept for the dead-letter queue. A message is deletable
   * only when every part of it is. Other errors are thrown (the caller holds and retries the group).
   */
  private async storeSplitting(messages: readonly DecodedMessage[]): Promise<{ deletable: string[]; announce: QueuedEvent[] }> {
    const stored = new Set<string>();
    const kept = new Set<string>();
    const announce: QueuedEvent[] = [];
    let extended = Date.now();
    const run = async (part: readonly DecodedMessage[]): Promise<void> => {
      try {
        const out = await this.deps.store(this.deps, part);
        const deletable = new Set(out.deletable);
        for (const m of part) (deletable.has(m.message.receiptHandle) ? stored : kept).add(m.message.receiptHandle);
        announce.push(...out.announce);
        return;
      } catch (err) {
        if (!isStatementTimeout(err)) throw err;
        this.deps.metrics.workerErrors.inc({ stage: "insert" });
      }
      // Splitting takes a statement timeout per level: keep the messages invisible meanwhile.
      if (Date.now() - extended > (this.opts.visibilitySeconds * 1000) / 2) {
        extended = Date.now();
        await this.deps.queue.changeVisibility(messages.map((m) => m.message.receiptHandle), this.opts.visibilitySeconds).catch(() => undefined);
      }
      if (part.length > 1) {
        const half = Math.ceil(part.length / 2);
        this.deps.logger.warn({ messages: part.length }, "statement timeout; storing the group in halves");
        await run(part.slice(0, half));
        await run(part.slice(half));
        return;
      }
      const m = part[0]!;
      if (m.events.length > 1) {
        const half = Math.ceil(m.events.length / 2);
        await run([{ message: m.message, events: m.events.slice(0, half), invalid: m.invalid }]);
        await run([{ message: m.message, events: m.events.slice(half), invalid: 0 }]);
        return;
      }
      kept.add(m.message.receiptHandle);
      this.deps.metrics.workerPoison.inc();
      const e = m.events[0];
      this.deps.logger.error(
        { messageId: m.message.messageId, receiveCount: m.message.receiveCount, tenant: e?.tenant_id, eventId: e?.id },
        "statement timeout storing this event alone (its fan-out is too big for the statement timeout); its message is left for the dead-letter queue",
      );
    };
    await run(messages);
    return { deletable: [...stored].filter((h) => !kept.has(h)), announce };
  }

  /**
   * Post-commit hook: wakes the API processes' long polls waiting for these tenants (and types).
   * In the background: a lost notification only delays a waiter to its safety re-check.
   */
  private announceStored(events: readonly QueuedEvent[]): void {
    const tenants = new Map<string, Set<string>>();
    const counts = new Map<string, number>();
    for (const e of events) {
      let types = tenants.get(e.tenant_id);
      if (!types) tenants.set(e.tenant_id, (types = new Set()));
      types.add(e.type);
      counts.set(e.tenant_id, (counts.get(e.tenant_id) ?? 0) + 1);
    }
    // The counts bound how many waiters each API process wakes.
    const pending = notifyDeliverable(this.deps.prisma, tenants, undefined, counts).catch((err: unknown) => {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not notify long polls of stored events");
    });
    this.notifies.add(pending);
    void pending.finally(() => this.notifies.delete(pending));
  }

  /** Deletes messages from SQS in the background (drain() waits for it). */
  private deleteInBackground(handles: readonly string[]): void {
    const pending = this.deleteStored(handles).catch((err) => {
      this.deps.metrics.workerErrors.inc({ stage: "delete" });
      this.deps.logger.warn({ err: errorMessage(err) }, "delete failed; the messages will be deduplicated on redelivery");
    });
    this.deletes.add(pending);
    void pending.finally(() => this.deletes.delete(pending));
  }

  /** Deletes committed messages from SQS, ten per request. */
  private async deleteStored(handles: readonly string[]): Promise<void> {
    if (handles.length === 0) return;
    const chunks: string[][] = [];
    for (let i = 0; i < handles.length; i += 10) chunks.push(handles.slice(i, i + 10));
    const failed = (await Promise.all(chunks.map((c) => this.deps.queue.deleteBatch(c)))).flat();
    if (failed.length > 0) {
      // The rows are committed; a message that reappears is a duplicate the insert will skip.
      this.deps.metrics.workerErrors.inc({ stage: "delete" }, failed.length);
      this.deps.logger.warn({ failed: failed.length }, "some messages could not be deleted; they will be deduplicated on redelivery");
    }
  }
}
