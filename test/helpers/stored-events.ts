/**
 * Stores events straight into the tables, each as a delivery of its tenant's `default`
 * subscription in a given state: the fixtures of expiry and scheduler tests, which need rows in
 * states (old acknowledgements, deaths) the API cannot make.
 *
 * Raw SQL, not test/helpers/factories.ts: these tests need what the factories cannot make, rows
 * delivered long ago, and ids carrying a tag the tests group and order by.
 *
 * `select` yields the columns id, tenant_id, type, payload, body_hash, status, received_at,
 * acknowledged_at, dead_at (status as event_status, times as timestamptz); `params` are its $n.
 */
export async function insertStoredEvents(
  exec: { query(sql: string, params?: readonly unknown[]): Promise<unknown> },
  select: string,
  params: readonly unknown[] = [],
): Promise<void> {
  await exec.query(
    `INSERT INTO subscriptions (tenant_id, name) SELECT DISTINCT src.tenant_id, 'default' FROM (${select}) src ON CONFLICT DO NOTHING`,
    params,
  );
  // Rows of any time, as a message that sat in SQS for days: the partitions covering them are made
  // as the worker's insert makes them (src/store/partitions.ts, ensurePartitionsCovering).
  await exec.query(
    `SELECT triggers_ensure_partitions(t, t + interval '1 millisecond', NULL) FROM (SELECT DISTINCT received_at AS t FROM (${select}) src) x`,
    params,
  );
  await exec.query(
    `WITH src AS (${select}),
     ev AS (
       INSERT INTO events (id, tenant_id, type, payload, body_hash, received_at)
       SELECT id, tenant_id, type, payload, body_hash, received_at FROM src
     )
     INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, received_at, status, acknowledged_at, dead_at)
     SELECT s.id, src.id, src.tenant_id, src.type, src.received_at, src.status, src.acknowledged_at, src.dead_at
     FROM src JOIN subscriptions s ON s.tenant_id = src.tenant_id AND s.name = 'default'`,
    params,
  );
}
