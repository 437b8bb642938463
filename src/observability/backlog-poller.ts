import type { Logger } from "./logger";
import type { Metrics } from "./metrics";
import { PeriodicPoll } from "./periodic-poll";
import { errorMessage } from "../errors";

/** What the poller reads: the largest backlogs, largest first (src/store/subscription-backlog.ts). */
export type BacklogSource = (limit: number) => Promise<ReadonlyArray<{ tenantId: string; subscription: string; backlog: number }>>;

/** Options of a SubscriptionBacklogPoller. */
export interface SubscriptionBacklogPollerOptions {
  readonly source: BacklogSource;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Subscriptions exported (BACKLOG_TOP_N); 0 exports none and never queries. */
  readonly topN: number;
  /** Time between polls, ms (default 60 000: one statement a minute per API process). */
  readonly intervalMs?: number;
}

/**
 * Keeps triggers_subscription_backlog{tenant,subscription} to the topN subscriptions with the largest
 * backlog, with one query per interval whatever the number of tenants. Each poll replaces the whole
 * set, so a subscription that leaves the top N loses its series and the gauge never holds more than
 * topN series. A failed poll keeps the last values and is logged at most once a minute. A poll's
 * wait is bounded by the database client's statement deadline (DB_QUERY_TIMEOUT_MS).
 */
export class SubscriptionBacklogPoller {
  private lastWarning = 0;
  private readonly periodic: PeriodicPoll;

  constructor(private readonly opts: SubscriptionBacklogPollerOptions) {
    this.periodic = new PeriodicPoll(() => this.poll(), opts.intervalMs ?? 60_000);
  }

  /** Polls now and then every interval (nothing when topN is 0); the timer never keeps the process alive. */
  start(): this {
    if (this.opts.topN >= 1) this.periodic.start();
    return this;
  }

  /** Queries once and replaces the gauge's series; never rejects. */
  refresh(): Promise<void> {
    return this.periodic.refresh();
  }

  /** Stops polling and waits for a poll in progress. */
  stop(): Promise<void> {
    return this.periodic.stop();
  }

  private get stopped(): boolean {
    return this.periodic.stopped;
  }

  private async poll(): Promise<void> {
    if (this.opts.topN < 1) return;
    try {
      const rows = await this.opts.source(this.opts.topN);
      if (this.stopped) return;
      const gauge = this.opts.metrics.subscriptionBacklog;
      // No await between the reset and the sets: a scrape sees the old set or the new one.
      gauge.reset();
      for (const r of rows.slice(0, this.opts.topN)) gauge.set({ tenant: r.tenantId, subscription: r.subscription }, r.backlog);
    } catch (err) {
      if (this.stopped) return;
      if (Date.now() - this.lastWarning > 60_000) {
        this.lastWarning = Date.now();
        this.opts.logger.warn({ err: errorMessage(err) }, "subscription backlog poll failed");
      }
    }
  }
}
