import { Writable } from "node:stream";
import { notifyDeliverable, Wakeups } from "../../src/inbox/wakeups";
import { createLogger } from "../../src/observability/logger";
import { connectPostgres, type Database } from "../../src/store/database";
import { resolveSubscription } from "../../src/store/subscriptions";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { TcpProxy } from "../helpers/tcp-proxy";
import { seed } from "./inbox-fixtures";
import { putInState } from "../helpers/factories";

jest.setTimeout(60_000);

/**
 * A LISTEN connection that goes silent (the server stops answering on it, nothing closes it: no
 * error, no end) is found by its periodic check, replaced, LISTEN issued again, the waiting keys
 * re-checked once (so what was notified meanwhile is not lost), and the replacement is logged.
 * The safety re-check is a minute apart here: only the listener's recovery can wake the waiter.
 */
onlyOn("postgres", "it routes the LISTEN connection of a Postgres database through a proxy").describe("the LISTEN connection's check", () => {
  let h: Harness;
  let proxy: TcpProxy;
  let viaProxy: Database;
  const logs: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    proxy = await TcpProxy.forUrl(h.databaseUrl).start();
    viaProxy = connectPostgres(proxy.rewrite(h.databaseUrl), { poolSize: 1 });
  });
  afterAll(async () => {
    await viaProxy.close();
    await proxy.stop();
    await h.close();
  });

  test("a silent LISTEN connection is replaced and waiters are woken again, without a restart", async () => {
    // The first LISTEN goes through the proxy; the replacement connects directly.
    let listens = 0;
    const db: Database = { ...h.c.db, listen: (channel, onPayload, onLost) => (listens++ === 0 ? viaProxy : h.c.db).listen(channel, onPayload, onLost) };
    const sink = new Writable({
      write(chunk, _e, cb) {
        logs.push(String(chunk));
        cb();
      },
    });
    const wakeups = new Wakeups({ db, logger: createLogger("info", sink), safetyMs: 60_000, listenCheckMs: 300, listenCheckTimeoutMs: 500 });
    await wakeups.start();
    try {
      const tenantId = "listener-check";
      await h.key(tenantId);
      const subscriptionId = (await resolveSubscription(h.c.db.prisma, tenantId, "default"))!;
      const key = { tenantId, subscriptionId, filter: {}, limit: 10 };

      // Healthy: a notification wakes the waiter.
      const first = wakeups.register(key);
      const firstIds = await seed(h, tenantId, 1);
      await notifyDeliverable(h.c.db.prisma, new Map([[tenantId, null]]));
      expect(await first.wait(Date.now() + 10_000, new AbortController().signal)).toBe("wake");
      first.done();
      await putInState(h.c.db.prisma, tenantId, firstIds, { status: "acknowledged", at: new Date() });

      // The listening connection stops answering and is never closed.
      proxy.freeze("mid-connection");
      const second = wakeups.register(key);
      const secondIds = await seed(h, tenantId, 1);
      await notifyDeliverable(h.c.db.prisma, new Map([[tenantId, null]]));
      expect(await second.wait(Date.now() + 15_000, new AbortController().signal)).toBe("wake");
      second.done();
      expect(wakeups.stats.listenerReplaced).toBeGreaterThanOrEqual(1);
      expect(logs.join("")).toMatch(/wake-up channel failed its check; replacing it/);
      await putInState(h.c.db.prisma, tenantId, secondIds, { status: "acknowledged", at: new Date() });

      // Listening again: a notification wakes the next waiter (not a re-check: none is due).
      await h.eventually(async () => wakeups.listening);
      const third = wakeups.register(key);
      await seed(h, tenantId, 1);
      await notifyDeliverable(h.c.db.prisma, new Map([[tenantId, null]]));
      expect(await third.wait(Date.now() + 10_000, new AbortController().signal)).toBe("wake");
      third.done();
    } finally {
      proxy.thaw();
      await wakeups.close();
    }
  });
});
