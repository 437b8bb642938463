import { insertStoredEvents } from "../helpers/stored-events";
import { connectPostgres, type Database } from "../../src/store/database";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import { expireEvents } from "../../src/jobs/expire-events";
import { ExpiryPacer, type PacingAction } from "../../src/jobs/expiry-pacer";
import { createTestSchema, onlyOn } from "../helpers/harness";
import { deadline } from "../helpers/deadlines";

const DAY = 86_400;
const ROWS = 400_000;
const LOAD_CONNECTIONS = 4;

type Phase = "idle-before" | "loaded" | "idle-after";

/**
 * The controller on a real database: expiry drains a backlog while a competing write load on the
 * same table comes and goes. It must slow down (lower duty) when the load appears and speed up when
 * it goes. Only the direction is asserted; the phases end on counts of decisions, with generous
 * time limits, and nothing is timed.
 */
onlyOn("postgres", "the competing write load needs connections of its own").describe("expiry pacing (real Postgres)", () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let db: Database;

  beforeAll(async () => {
    schema = await createTestSchema();
    db = connectPostgres(schema.url, { poolSize: LOAD_CONNECTIONS + 4 });
    await applyMigrations(db.migrator, loadMigrations());
    // Raw SQL, not the factories: 400 000 rows through the store's insert would take far longer.
    // Received 20 days ago, past the retentions plus a partition width: rows of a partition a live
    // row holds, the only ones expiry still deletes row by row (the rest go with their partition).
    await insertStoredEvents(
      db.migrator,
      `SELECT 'old_' || g AS id, 'tenant-' || (g % 4) AS tenant_id, 'test.seeded' AS type, jsonb_build_object('n', g, 'pad', repeat('x', 200)) AS payload, repeat('0', 64) AS body_hash,
              'acknowledged'::event_status AS status, now() - interval '20 days' AS received_at, now() - interval '8 days' + g * interval '1 millisecond' AS acknowledged_at, NULL::timestamptz AS dead_at
       FROM generate_series(1, $1::int) AS g`,
      [ROWS],
    );
    await db.migrator.query("VACUUM ANALYZE events");
    await db.migrator.query("VACUUM ANALYZE deliveries");
  }, deadline(120_000));
  afterAll(async () => {
    await db?.close();
    await schema?.drop();
  });

  it("slows down when a competing write load appears and speeds up when it goes", async () => {
    // Small batches and a low ceiling, so the backlog outlasts all three phases on any machine.
    const pacer = new ExpiryPacer({ minBatchSize: 50, maxBatchSize: 1000, minDuty: 0.02, maxDuty: 0.4, maxRestMs: 500, window: 2 });
    let phase: Phase = "idle-before";
    const decisions: { phase: Phase; action: PacingAction; duty: number }[] = [];
    pacer.onDecision((action, s) => decisions.push({ phase, action, duty: s.duty }));
    const count = (p: Phase) => decisions.filter((d) => d.phase === p).length;

    let stop = false;
    let drained = false;
    const expiry = (async () => {
      while (!stop) {
        const r = await expireEvents(
          { prisma: db.prisma },
          { now: new Date(), batchSize: 1000, acknowledgedRetentionSeconds: 7 * DAY, deadRetentionSeconds: 14 * DAY, timeBudgetMs: 2000, pacer },
        );
        if (r.complete) {
          drained = true;
          return;
        }
      }
    })();

    // Waits until `n` decisions fell in the current phase, or `ms` passed (generous; never asserted).
    const waitFor = async (n: number, ms: number, done: () => boolean = () => false) => {
      const until = Date.now() + ms;
      while (Date.now() < until && count(phase) < n && !done() && !drained) await new Promise((r) => setTimeout(r, 100));
    };

    try {
      // Idle: the pacer climbs from its least duty. The load starts once it has room to come down
      // (a shared machine's own noise can hold it low for a while; the wait is generous).
      await waitFor(Number.MAX_SAFE_INTEGER, 120_000, () => count("idle-before") >= 6 && pacer.duty >= 0.1);
      const dutyBeforeLoad = pacer.duty;

      // A competing write load on the same table: inserts of 200 rows in a loop on several connections.
      phase = "loaded";
      let loading = true;
      const load = Promise.all(
        Array.from({ length: LOAD_CONNECTIONS }, async (_, w) => {
          for (let i = 0; loading; i++) {
            await db.prisma.$executeRaw`INSERT INTO events (id, tenant_id, type, payload, body_hash, received_at)
               SELECT ${`live_${w}_${i}_`}::text || g, 'tenant-live', 'test.live', jsonb_build_object('n', g, 'pad', repeat('y', 200)), repeat('1', 64), now()
               FROM generate_series(1, 200) AS g`;
          }
        }),
      );
      await waitFor(6, 90_000, () => decisions.some((d) => d.phase === "loaded" && d.action === "back-off") && count("loaded") >= 3);
      const loaded = decisions.filter((d) => d.phase === "loaded");
      const dutyUnderLoad = pacer.duty;
      loading = false;
      await load;

      // The load is gone: the pacer climbs again.
      phase = "idle-after";
      // The pacer reacts a few decisions late (and the load leaves autovacuum behind it), so this
      // waits for the climb itself, not for a number of decisions (generous; never asserted).
      await waitFor(Number.MAX_SAFE_INTEGER, 90_000, () => pacer.duty > dutyUnderLoad);

      expect(drained).toBe(false); // the backlog lasted: every phase saw the pacer at work
      expect(loaded.some((d) => d.action === "back-off")).toBe(true);
      expect(Math.min(...loaded.map((d) => d.duty))).toBeLessThan(dutyBeforeLoad);
      expect(Math.max(...decisions.filter((d) => d.phase === "idle-after").map((d) => d.duty))).toBeGreaterThan(dutyUnderLoad);
    } finally {
      stop = true;
      await expiry;
    }
  }, deadline(400_000));
});
