import { createHash } from "node:crypto";
import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import type { Database } from "../../src/store/database";
import { idempotentEventId, newEventId } from "../../src/domain/ids";
import type { QueuedEvent } from "../../src/domain/queued-event";
import { insertEvents } from "../../src/store/events/insert-events";
import { leaseEvents } from "../../src/store/events/lease-events";
import { ackLeases } from "../../src/store/events/ack-events";
import { findStoredKey } from "../../src/store/events/idempotency-keys";
import { listPartitions } from "../../src/store/partitions";
import { openTestDatabase } from "../helpers/harness";

/**
 * The partitioned-history migration on a database that holds events and deliveries in every
 * status over several days, keyed and unkeyed: every row arrives intact in the partition of its
 * received_at, every key in idempotency_keys, and ingest, lease, ack and idempotency work after.
 */
const MIGRATION = "20261207000100_partitioned_history";
const DAY_MS = 86_400_000;

describe("migration: events and deliveries become partitioned, keys move to idempotency_keys", () => {
  let db: Database;
  let cleanup: () => Promise<void>;
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const at = (days: number, ms = 0) => new Date(today - days * DAY_MS + ms).toISOString();
  let before: { events: Array<Record<string, unknown>>; deliveries: Array<Record<string, unknown>> };

  const EVENTS_SQL = `SELECT id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at, stored_at, schema_version, cloudevent FROM events ORDER BY id`;
  const DELIVERIES_SQL = `SELECT subscription_id, event_id, tenant_id, type, source, tags, received_at, status::text AS status, available_at, lease_id::text AS lease_id,
       leased_at, lease_expires_at, delivery_count, acknowledged_at, dead_at FROM deliveries ORDER BY event_id, subscription_id`;

  beforeAll(async () => {
    const opened = await openTestDatabase({ poolSize: 2, before: MIGRATION });
    db = opened.db;
    cleanup = opened.close;
    await db.migrator.query(`INSERT INTO subscriptions (tenant_id, name) VALUES ('ta', 'default'), ('ta', 'audit'), ('tb', 'default')`);
    // Events over five days (20 days back for the oldest), keyed and unkeyed, with a CloudEvent and a schema version.
    await db.migrator.query(
      `INSERT INTO events (id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at, schema_version, cloudevent) VALUES
         ('evt_p1', 'ta', 'order.created', 'shop', '{"n":1}', ARRAY['x'], NULL, 'h1', NULL, $1, NULL, NULL),
         ('evt_p2', 'ta', 'order.paid', NULL, '{"n":2}', ARRAY[]::text[], 'key-2', 'h2', '2026-01-01T00:00:00Z', $2, 3, NULL),
         ('evt_p3', 'ta', 'order.paid', 'shop', '{"n":3}', NULL, NULL, 'h3', NULL, $3, NULL, '{"id":"ce-3","specversion":"1.0"}'),
         ('evt_p4', 'tb', 'user.deleted', 'auth', '{"n":4}', ARRAY['y','z'], 'key-4', 'h4', NULL, $4, NULL, NULL),
         ('evt_p5', 'tb', 'user.created', 'auth', '{"n":5}', ARRAY[]::text[], 'key-5', 'h5', NULL, $5, NULL, NULL)`,
      [at(20, 1), at(2, 5), at(1), at(1, -1), at(0, 1234)],
    );
    // Deliveries in every status: pending, delivered (leased), acknowledged, dead; two subscriptions of ta.
    await db.migrator.query(
      `INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, status, available_at, lease_id, leased_at, lease_expires_at, delivery_count, acknowledged_at, dead_at)
       SELECT s.id, v.event_id, v.tenant_id, v.type, v.source, v.tags, v.received_at::timestamptz, v.status::event_status, v.available_at::timestamptz, v.lease_id::uuid,
              v.leased_at::timestamptz, v.lease_expires_at::timestamptz, v.delivery_count, v.acknowledged_at::timestamptz, v.dead_at::timestamptz
       FROM (VALUES
         ('ta', 'default', 'evt_p1', 'order.created', 'shop', ARRAY['x'], $1, 'pending', $1, NULL, NULL, NULL, 0, NULL, NULL),
         ('ta', 'audit', 'evt_p1', 'order.created', 'shop', ARRAY['x'], $1, 'acknowledged', $1, NULL, $1, NULL, 1, $1, NULL),
         ('ta', 'default', 'evt_p2', 'order.paid', NULL, ARRAY[]::text[], $2, 'delivered', '2099-01-01T00:00:00Z', '6f1c7f0e-8d1e-4c55-9b5e-0a0a0a0a0a0a', $2, '2099-01-01T00:00:00Z', 2, NULL, NULL),
         ('ta', 'default', 'evt_p3', 'order.paid', 'shop', ARRAY[]::text[], $3, 'acknowledged', $3, NULL, $3, NULL, 1, $3, NULL),
         ('tb', 'default', 'evt_p4', 'user.deleted', 'auth', ARRAY['y','z'], $4, 'dead', $4, NULL, $4, NULL, 5, NULL, $4),
         ('tb', 'default', 'evt_p5', 'user.created', 'auth', ARRAY[]::text[], $5, 'pending', $5, NULL, NULL, NULL, 0, NULL, NULL)
       ) AS v(tenant_id, sub, event_id, type, source, tags, received_at, status, available_at, lease_id, leased_at, lease_expires_at, delivery_count, acknowledged_at, dead_at)
       JOIN subscriptions s ON s.tenant_id = v.tenant_id AND s.name = v.sub`,
      [at(20, 1), at(2, 5), at(1), at(1, -1), at(0, 1234)],
    );
    before = { events: await db.migrator.query(EVENTS_SQL), deliveries: await db.migrator.query(DELIVERIES_SQL) };
    expect(before.events).toHaveLength(5);
    expect(before.deliveries).toHaveLength(6);
    const all = loadMigrations();
    const result = await applyMigrations(db.migrator, all);
    expect(result.applied).toEqual(all.filter((m) => m.name >= MIGRATION).map((m) => m.name));
  });
  afterAll(async () => cleanup?.());

  test("both tables are partitioned by received_at, with partitions from the oldest row to three days ahead", async () => {
    const kinds = await db.migrator.query<{ relname: string; relkind: string; key: string }>(
      `SELECT relname, relkind, pg_get_partkeydef(oid) AS key FROM pg_class WHERE relname IN ('events', 'deliveries') AND relnamespace = to_regnamespace(current_schema()) ORDER BY relname`,
    );
    expect(kinds).toEqual([
      { relname: "deliveries", relkind: "p", key: "RANGE (received_at)" },
      { relname: "events", relkind: "p", key: "RANGE (received_at)" },
    ]);
    const parts = await listPartitions(db.prisma, "events");
    expect(parts[0]!.lower.getTime()).toBe(today - 20 * DAY_MS);
    expect(parts.at(-1)!.upper.getTime()).toBeGreaterThan(Date.now() + 3 * DAY_MS);
    const old = await db.migrator.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname IN ('events_unpartitioned', 'deliveries_unpartitioned')`);
    expect(old[0]!.n).toBe(0);
  });

  test("every event and every delivery is kept as it was, in the partition of its received_at", async () => {
    expect(await db.migrator.query(EVENTS_SQL)).toEqual(before.events);
    expect(await db.migrator.query(DELIVERIES_SQL)).toEqual(before.deliveries);
    const placed = await db.migrator.query<{ id: string; part: string; received_at: Date }>(`SELECT id, tableoid::regclass::text AS part, received_at FROM events ORDER BY id`);
    for (const p of placed) {
      const day = new Date(Math.floor(p.received_at.getTime() / DAY_MS) * DAY_MS).toISOString().slice(0, 10).replace(/-/g, "");
      expect({ id: p.id, part: p.part.replace(/^.*\./, "") }).toEqual({ id: p.id, part: `events_p${day}t000000` });
    }
  });

  test("every keyed event's key is in idempotency_keys with its event, received_at and body hash", async () => {
    const keys = await db.migrator.query(`SELECT tenant_id, idempotency_key, event_id, received_at, body_hash FROM idempotency_keys ORDER BY idempotency_key`);
    const keyed = before.events.filter((e) => e.idempotency_key !== null);
    expect(keys).toEqual(keyed.map((e) => ({ tenant_id: e.tenant_id, idempotency_key: e.idempotency_key, event_id: e.id, received_at: e.received_at, body_hash: e.body_hash })));
  });

  test("after it, ingest, lease, ack and idempotency work on the migrated rows and new ones", async () => {
    // A migrated key still holds: a send under key-2 with another id is not stored, and the key answers the old event.
    expect(await findStoredKey(db.prisma, "ta", "key-2")).toEqual({ body_hash: "h2", received_at: at(2, 5) });
    const body = (n: number) => createHash("sha256").update(String(n)).digest("hex");
    const mk = (over: Partial<QueuedEvent>): QueuedEvent =>
      ({ v: 1, id: newEventId(), tenant_id: "ta", type: "order.created", source: null, tags: [], payload: { new: true }, occurred_at: null, idempotency_key: null, body_hash: body(0), received_at: new Date().toISOString(), ...over }) as QueuedEvent;
    expect(await insertEvents(db.prisma, [mk({ id: idempotentEventId("ta", "key-2"), idempotency_key: "key-2", body_hash: "h2" })])).toBe(0);
    expect(await insertEvents(db.prisma, [mk({}), mk({ id: idempotentEventId("ta", "key-new"), idempotency_key: "key-new", body_hash: body(1) })])).toBe(2);
    expect(await findStoredKey(db.prisma, "ta", "key-new")).toMatchObject({ body_hash: body(1) });
    // Lease the default subscription of ta: the migrated pending one first (oldest), then the two new ones; the leased one (2099) is not due.
    const sub = (await db.migrator.query<{ id: number }>(`SELECT id FROM subscriptions WHERE tenant_id = 'ta' AND name = 'default'`))[0]!.id;
    const leased = await leaseEvents(db.prisma, { tenantId: "ta", subscriptionId: sub!, limit: 10, visibilitySeconds: 30, maxDeliveries: 10 });
    expect(leased.events.map((e) => e.id).slice(0, 1)).toEqual(["evt_p1"]);
    expect(leased.events).toHaveLength(3);
    const acked = await ackLeases(db.prisma, "ta", sub!, leased.events.map((e) => ({ id: e.id, lease_id: e.lease_id! })));
    expect(acked.results.map((r) => r.status)).toEqual(["acknowledged", "acknowledged", "acknowledged"]);
    const statuses = await db.migrator.query<{ event_id: string; status: string }>(
      `SELECT event_id, status::text AS status FROM deliveries WHERE subscription_id = $1 AND event_id IN ('evt_p1', 'evt_p2', 'evt_p3') ORDER BY event_id`,
      [sub],
    );
    expect(statuses).toEqual([
      { event_id: "evt_p1", status: "acknowledged" },
      { event_id: "evt_p2", status: "delivered" },
      { event_id: "evt_p3", status: "acknowledged" },
    ]);
  });
});
