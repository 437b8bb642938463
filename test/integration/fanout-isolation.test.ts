import { startHarness, onlyOn, type Harness } from "../helpers/harness";
import { GroupCommit } from "../../src/ingest/group-commit";
import { decodeMessage, storeMessages, type DecodedMessage, type StoreMessagesFn } from "../../src/ingest/store-messages";
import { counterTotal } from "../helpers/metrics";

/** Receives from the harness's queue until `events` events are in hand (each message decoded). */
async function receiveEvents(h: Harness, events: number): Promise<DecodedMessage[]> {
  const got: DecodedMessage[] = [];
  await h.eventually(async () => {
    const batch = await h.c.queue.receive({ max: 10, waitSeconds: 1, visibilitySeconds: 60 });
    got.push(...batch.map(decodeMessage));
    return got.reduce((n, m) => n + m.events.length, 0) >= events;
  }, 15_000);
  return got;
}

/** Resolves with `p`, or rejects once `ms` pass: a group commit that retries forever fails the test. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Fan-out must not let one tenant's subscriptions hold up the group commits other tenants' events share. */
describe("fan-out isolation in the group commit", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false, env: { MAX_SUBSCRIPTIONS_PER_TENANT: "20" } });
  });
  afterAll(() => h.close());

  test("a group is bounded by the rows it writes (events and their deliveries), not by events", async () => {
    const wide = await h.key("fan-wide");
    for (let i = 0; i < 9; i++) expect((await h.request("POST", "/subscriptions", { key: wide, body: { name: `s${i}` } })).status).toBe(201);
    const narrow = await h.key("fan-narrow");
    // Six events of the wide tenant (11 rows each: the event and 10 deliveries) and six of the narrow one (2 rows each).
    for (let i = 0; i < 6; i++) {
      expect((await h.request("POST", "/events", { key: wide, body: { type: "wide.event", payload: { i } } })).status).toBe(202);
      expect((await h.request("POST", "/events", { key: narrow, body: { type: "narrow.event", payload: { i } } })).status).toBe(202);
    }
    const messages = await receiveEvents(h, 12);
    const groups: number[] = [];
    const recording: StoreMessagesFn = async (deps, ms) => {
      groups.push(ms.reduce((n, m) => n + m.events.reduce((r, e) => r + (e.tenant_id === "fan-wide" ? 11 : 2), 0), 0));
      return storeMessages(deps, ms);
    };
    const gc = new GroupCommit({ prisma: h.c.db.prisma, logger: h.c.logger, metrics: h.c.metrics, queue: h.c.queue, store: recording }, { visibilitySeconds: 60, maxGroupRows: 30 });
    await within(Promise.all(messages.map((m) => gc.commit([m]))), 20_000);
    await gc.drain();
    expect(Math.max(...groups)).toBeLessThanOrEqual(30);
    expect((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = 'fan-wide'"))[0]!.n).toBe(60);
  });

  test("a tenant past its share of the worker has its further events sent back to the queue with a delay; other tenants' go on", async () => {
    const heavy = await h.key("fan-heavy");
    for (let i = 0; i < 9; i++) expect((await h.request("POST", "/subscriptions", { key: heavy, body: { name: `s${i}` } })).status).toBe(201);
    const light = await h.key("fan-light");
    for (let i = 0; i < 6; i++) expect((await h.request("POST", "/events", { key: heavy, body: { type: "heavy.event", payload: { i } } })).status).toBe(202);
    for (let i = 0; i < 2; i++) expect((await h.request("POST", "/events", { key: light, body: { type: "light.event", payload: { i } } })).status).toBe(202);
    const messages = await receiveEvents(h, 8);
    // 11 rows per heavy event (the event and 10 deliveries): a share of 33 rows holds three of them.
    const gc = new GroupCommit({ prisma: h.c.db.prisma, logger: h.c.logger, metrics: h.c.metrics, queue: h.c.queue, store: storeMessages }, { visibilitySeconds: 60, maxGroupRows: 30, maxTenantRows: 33 });
    await within(gc.commit(messages), 20_000);
    await gc.drain();
    const stored = async (tenant: string) => (await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = $1", [tenant]))[0]!.n;
    expect(await stored("fan-light")).toBe(2);
    expect(await stored("fan-heavy")).toBe(3);
    expect(h.logs.some((l) => l.includes("fan-heavy") && l.includes("deferring"))).toBe(true);
    // Every original message was deleted; the deferred events come back as new messages and are stored then.
    const later = await receiveEvents(h, 3);
    expect(later.flatMap((m) => m.events.map((e) => e.tenant_id))).toEqual(["fan-heavy", "fan-heavy", "fan-heavy"]);
    await within(gc.commit(later), 20_000);
    await gc.drain();
    expect(await stored("fan-heavy")).toBe(6);
    expect((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = 'fan-heavy'"))[0]!.n).toBe(60);
  });

  onlyOn("postgres", "a statement timeout needs the server's statement_timeout").test(
    "a statement timeout splits the group down to the message that causes it, which is left for the dead-letter queue; the rest is stored",
    async () => {
      // A fan-out for this tenant outlasts the statement timeout (a trigger stands in for thousands of subscriptions).
      await h.sql(`CREATE FUNCTION slow_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.tenant_id = 'fan-slow' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$`);
      await h.sql("CREATE TRIGGER slow_fanout BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION slow_fanout()");
      const slow = await h.key("fan-slow");
      const others = await h.key("fan-others");
      expect((await h.request("POST", "/events", { key: slow, body: { type: "slow.event", payload: {} } })).status).toBe(202);
      for (let i = 0; i < 5; i++) expect((await h.request("POST", "/events", { key: others, body: { type: "other.event", payload: { i } } })).status).toBe(202);
      const messages = await receiveEvents(h, 6);
      const slowMessage = messages.find((m) => m.events.some((e) => e.tenant_id === "fan-slow"))!;
      const poisonBefore = await counterTotal(h.c.metrics.workerPoison);
      // The store step runs with a 1 s statement timeout: the trigger's 3 s sleep cancels the statement (57014).
      const timed: StoreMessagesFn = (deps, ms) =>
        h.c.db.prisma.$transaction(async (tx) => {
          await tx.$executeRaw`SET LOCAL statement_timeout = 1000`;
          return storeMessages({ ...deps, prisma: tx as never }, ms);
        }, { timeout: 60_000 });
      const gc = new GroupCommit({ prisma: h.c.db.prisma, logger: h.c.logger, metrics: h.c.metrics, queue: h.c.queue, store: timed }, { visibilitySeconds: 60 });
      await within(gc.commit(messages), 30_000);
      await gc.drain();
      // Every other event is stored; the slow one is not, and its message is not deleted.
      expect((await h.sql<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'fan-others'"))[0]!.n).toBe(5);
      expect(await h.sql("SELECT id FROM events WHERE tenant_id = 'fan-slow'")).toEqual([]);
      expect((await counterTotal(h.c.metrics.workerPoison)) - poisonBefore).toBe(1);
      const line = h.logs.find((l) => l.includes("statement timeout") && l.includes(slowMessage.message.messageId));
      expect(line).toBeDefined();
      expect(JSON.parse(line!).level).toBe(50); // error
      // Recovery: once the fan-out is fast again, the redelivered message is stored.
      await h.sql("DROP TRIGGER slow_fanout ON deliveries");
      await h.c.queue.changeVisibility([slowMessage.message.receiptHandle], 0);
      const again = await receiveEvents(h, 1);
      await within(gc.commit(again), 30_000);
      expect((await h.sql("SELECT id FROM events WHERE tenant_id = 'fan-slow'")).length).toBe(1);
    },
    60_000,
  );
});
