import { applyMigrations, loadMigrations } from "../../src/store/migrate/migrations";
import type { Database } from "../../src/store/database";
import { openTestDatabase } from "../helpers/harness";

/**
 * The subscriptions migration on a database that already holds events in every status: each
 * tenant gets a `default` subscription and every event becomes a delivery of it, state intact.
 */
const SUBSCRIPTIONS = "20261201000400_subscriptions";

describe("migration: existing events become deliveries of default", () => {
  let db: Database;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const opened = await openTestDatabase({ poolSize: 2, before: SUBSCRIPTIONS });
    db = opened.db;
    cleanup = opened.close;
    // Events in every status, for two tenants, plus a tenant with a key and no events.
    await db.migrator.query(
      `INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, status, received_at, available_at,
         lease_id, leased_at, lease_expires_at, delivery_count, acknowledged_at, dead_at)
       VALUES
         ('evt_a1', 'ta', 'order.created', 'shop', '{"n":1}', ARRAY['x'], 'h', 'pending', '2026-11-01T00:00:01Z', '2026-11-01T00:00:01Z', NULL, NULL, NULL, 0, NULL, NULL),
         ('evt_a2', 'ta', 'order.paid', NULL, '{"n":2}', ARRAY[]::text[], 'h', 'delivered', '2026-11-01T00:00:02Z', '2099-01-01T00:00:00Z',
           '6f1c7f0e-8d1e-4c55-9b5e-0a0a0a0a0a0a', '2026-11-01T00:01:00Z', '2099-01-01T00:00:00Z', 2, NULL, NULL),
         ('evt_a3', 'ta', 'order.paid', 'shop', '{"n":3}', NULL, 'h', 'acknowledged', '2026-11-01T00:00:03Z', '2026-11-01T00:00:03Z', NULL, '2026-11-01T00:01:00Z', NULL, 1, '2026-11-01T00:02:00Z', NULL),
         ('evt_b1', 'tb', 'user.deleted', 'auth', '{"n":4}', ARRAY['y','z'], 'h', 'dead', '2026-11-01T00:00:04Z', '2026-11-01T00:00:04Z', NULL, '2026-11-01T00:01:00Z', NULL, 5, NULL, '2026-11-01T00:03:00Z')`,
    );
    await db.migrator.query(`INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes) VALUES ('key_1', 'tc', 'k', 'trg', 'hash1', ARRAY['admin'])`);
    const all = loadMigrations();
    const result = await applyMigrations(db.migrator, all);
    expect(result.applied).toEqual(all.filter((m) => m.name >= SUBSCRIPTIONS).map((m) => m.name));
  });
  afterAll(async () => cleanup?.());

  test("every tenant has one default subscription with no filter", async () => {
    const subs = await db.migrator.query<{ tenant_id: string; name: string; filter_types: unknown; filter_sources: unknown; filter_tags: unknown }>(
      "SELECT tenant_id, name, filter_types, filter_sources, filter_tags FROM subscriptions ORDER BY tenant_id",
    );
    expect(subs).toEqual(
      ["ta", "tb", "tc"].map((tenant_id) => ({ tenant_id, name: "default", filter_types: null, filter_sources: null, filter_tags: null })),
    );
  });

  test("every event is a delivery of its tenant's default, with its status, lease, count and times", async () => {
    const rows = await db.migrator.query<Record<string, unknown>>(
      `SELECT d.event_id, d.tenant_id, s.name, d.type, d.source, d.tags, d.status::text AS status, d.delivery_count,
              d.lease_id::text AS lease_id, d.received_at, d.available_at, d.lease_expires_at, d.acknowledged_at, d.dead_at
       FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id AND s.tenant_id = d.tenant_id
       ORDER BY d.event_id`,
    );
    const at = (s: string | null) => (s === null ? null : new Date(s).getTime());
    const norm = rows.map((r) => ({
      ...r,
      received_at: at(r.received_at as string),
      available_at: at(r.available_at as string),
      lease_expires_at: at(r.lease_expires_at as string | null),
      acknowledged_at: at(r.acknowledged_at as string | null),
      dead_at: at(r.dead_at as string | null),
    }));
    expect(norm).toEqual([
      { event_id: "evt_a1", tenant_id: "ta", name: "default", type: "order.created", source: "shop", tags: ["x"], status: "pending", delivery_count: 0, lease_id: null,
        received_at: at("2026-11-01T00:00:01Z"), available_at: at("2026-11-01T00:00:01Z"), lease_expires_at: null, acknowledged_at: null, dead_at: null },
      { event_id: "evt_a2", tenant_id: "ta", name: "default", type: "order.paid", source: null, tags: [], status: "delivered", delivery_count: 2, lease_id: "6f1c7f0e-8d1e-4c55-9b5e-0a0a0a0a0a0a",
        received_at: at("2026-11-01T00:00:02Z"), available_at: at("2099-01-01T00:00:00Z"), lease_expires_at: at("2099-01-01T00:00:00Z"), acknowledged_at: null, dead_at: null },
      { event_id: "evt_a3", tenant_id: "ta", name: "default", type: "order.paid", source: "shop", tags: [], status: "acknowledged", delivery_count: 1, lease_id: null,
        received_at: at("2026-11-01T00:00:03Z"), available_at: at("2026-11-01T00:00:03Z"), lease_expires_at: null, acknowledged_at: at("2026-11-01T00:02:00Z"), dead_at: null },
      { event_id: "evt_b1", tenant_id: "tb", name: "default", type: "user.deleted", source: "auth", tags: ["y", "z"], status: "dead", delivery_count: 5, lease_id: null,
        received_at: at("2026-11-01T00:00:04Z"), available_at: at("2026-11-01T00:00:04Z"), lease_expires_at: null, acknowledged_at: null, dead_at: at("2026-11-01T00:03:00Z") },
    ]);
  });

  test("the events themselves are kept, payloads intact", async () => {
    const rows = await db.migrator.query<{ id: string; payload: unknown }>("SELECT id, payload FROM events ORDER BY id");
    expect(rows).toEqual([
      { id: "evt_a1", payload: { n: 1 } },
      { id: "evt_a2", payload: { n: 2 } },
      { id: "evt_a3", payload: { n: 3 } },
      { id: "evt_b1", payload: { n: 4 } },
    ]);
  });
});
