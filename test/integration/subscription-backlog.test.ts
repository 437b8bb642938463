/**
 * The largest subscription backlogs (src/store/subscription-backlog.ts) and the gauge the API role
 * keeps from them (src/observability/backlog-poller.ts), on the run's store: what counts as backlog
 * (pending and leased, not acknowledged or dead), deleted subscriptions left out, the order and the
 * bound, and a gauge that holds exactly the current top N series.
 */
import { loadIndexParents } from "../helpers/partition-plans";
import { Client } from "pg";
import { largestBacklogs, largestBacklogsSql } from "../../src/store/subscription-backlog";
import { parseDatabaseUrl } from "../../src/store/database";
import { SubscriptionBacklogPoller } from "../../src/observability/backlog-poller";
import { createMetrics } from "../../src/observability/metrics";
import { createLogger } from "../../src/observability/logger";
import { onlyOn, openTestDatabase } from "../helpers/harness";
import { deadline } from "../helpers/deadlines";

jest.setTimeout(deadline(60_000));

let opened: Awaited<ReturnType<typeof openTestDatabase>>;
const prisma = () => opened.db.prisma;
let n = 0;

/** A live (or deleted) subscription; returns its id. */
async function subscription(tenant: string, name: string, deleted = false): Promise<number> {
  const rows = await prisma().$queryRaw<Array<{ id: number }>>`
    INSERT INTO subscriptions (tenant_id, name, filter_types, filter_sources, filter_tags, deleted_at)
    VALUES (${tenant}, ${name}, NULL, NULL, NULL, CASE WHEN ${deleted} THEN now() END) RETURNING id`;
  return Number(rows[0]!.id);
}

/**
 * `count` deliveries of a subscription in one status (no events needed: deliveries have no foreign key to them).
 * Raw SQL, not the factories: their insert fans out to every live subscription of the tenant, and
 * this places each delivery on one, deleted ones included.
 */
async function deliveries(tenant: string, subscriptionId: number, count: number, status: "pending" | "delivered" | "acknowledged" | "dead"): Promise<void> {
  for (let i = 0; i < count; i++) {
    n++;
    await prisma().$executeRaw`
      INSERT INTO deliveries (event_id, subscription_id, tenant_id, type, received_at, status)
      VALUES (${`evt_backlog_${n}`}, ${subscriptionId}::int, ${tenant}, 'test.event', now(), ${status}::event_status)`;
  }
}

let big: number;

beforeAll(async () => {
  opened = await openTestDatabase();
  big = await subscription("tenant-a", "big");
  await deliveries("tenant-a", big, 5, "pending");
  await deliveries("tenant-a", big, 2, "delivered");
  await deliveries("tenant-a", big, 3, "acknowledged");
  await deliveries("tenant-a", big, 1, "dead");
  await deliveries("tenant-a", await subscription("tenant-a", "small"), 2, "pending");
  await deliveries("tenant-b", await subscription("tenant-b", "mid"), 4, "pending");
  await deliveries("tenant-b", await subscription("tenant-b", "gone", true), 9, "pending");
  await deliveries("tenant-c", await subscription("tenant-c", "tie"), 2, "pending");
  await subscription("tenant-c", "empty");
});

afterAll(async () => {
  await opened?.close();
});

test("counts pending and leased deliveries of live subscriptions, largest first, ties by tenant", async () => {
  expect(await largestBacklogs(prisma(), 10)).toEqual([
    { tenantId: "tenant-a", subscription: "big", backlog: 7 },
    { tenantId: "tenant-b", subscription: "mid", backlog: 4 },
    { tenantId: "tenant-a", subscription: "small", backlog: 2 },
    { tenantId: "tenant-c", subscription: "tie", backlog: 2 },
  ]);
});

test("returns at most `limit` subscriptions, and none for 0", async () => {
  expect((await largestBacklogs(prisma(), 2)).map((b) => b.subscription)).toEqual(["big", "mid"]);
  expect(await largestBacklogs(prisma(), 0)).toEqual([]);
});

test("the gauge holds exactly the current top N: a subscription that leaves it loses its series", async () => {
  const metrics = createMetrics();
  const poller = new SubscriptionBacklogPoller({ source: (limit) => largestBacklogs(prisma(), limit), topN: 2, metrics, logger: createLogger("silent") });
  const series = async () => (await metrics.subscriptionBacklog.get()).values.map((v) => `${v.labels.tenant}/${v.labels.subscription}=${v.value}`).sort();
  try {
    await poller.refresh();
    expect(await series()).toEqual(["tenant-a/big=7", "tenant-b/mid=4"]);
    // big's backlog acknowledged: it drops out, small (ahead of tie by tenant) comes in.
    await prisma().$executeRaw`UPDATE deliveries SET status = 'acknowledged', acknowledged_at = now() WHERE subscription_id = ${big}::int AND status IN ('pending', 'delivered')`;
    await poller.refresh();
    expect(await series()).toEqual(["tenant-a/small=2", "tenant-b/mid=4"]);
  } finally {
    await poller.stop();
  }
});

test("a failed query keeps the last values; topN 0 never queries", async () => {
  const metrics = createMetrics();
  let calls = 0;
  let fail = false;
  const source = async (limit: number) => {
    calls++;
    if (fail) throw new Error("database unavailable");
    return largestBacklogs(prisma(), limit);
  };
  const poller = new SubscriptionBacklogPoller({ source, topN: 1, metrics, logger: createLogger("silent") });
  await poller.refresh();
  fail = true;
  await poller.refresh();
  expect((await metrics.subscriptionBacklog.get()).values.map((v) => v.labels.subscription)).toEqual(["mid"]);
  const off = new SubscriptionBacklogPoller({ source, topN: 0, metrics: createMetrics(), logger: createLogger("silent") }).start();
  await off.refresh();
  await off.stop();
  expect(calls).toBe(2);
});

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}
const planNodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(planNodes)];

onlyOn("postgres", "it asserts the Postgres server's query plan").describe("the largest-backlog query plan (Postgres)", () => {
  let client: Client;

  beforeAll(async () => {
    const { connectionString, schema } = parseDatabaseUrl(opened.url!);
    client = new Client({ connectionString, options: `-c search_path="${schema}" -c statement_timeout=60000` });
    await client.connect();
    // 200 subscriptions of 40 tenants; 40 000 deliveries, three quarters acknowledged (the pending ones fall on 50 subscriptions, 200 each).
    // Raw SQL, as deliveries() above: each delivery on one chosen subscription, 40 000 in one statement.
    await client.query(`INSERT INTO subscriptions (tenant_id, name) SELECT 'plan-' || (i % 40), 'sub-' || i FROM generate_series(1, 200) AS i`);
    await client.query(
      `INSERT INTO deliveries (event_id, subscription_id, tenant_id, type, received_at, status, acknowledged_at)
       SELECT 'evt_plan_' || i, s.id, s.tenant_id, 'test.event', now(), CASE WHEN i % 4 = 0 THEN 'pending' ELSE 'acknowledged' END::event_status, CASE WHEN i % 4 = 0 THEN NULL ELSE now() END
         FROM generate_series(1, 40000) AS i
         JOIN subscriptions s ON s.name = 'sub-' || (1 + i % 200) AND s.tenant_id LIKE 'plan-%'`,
    );
    await client.query("VACUUM ANALYZE subscriptions");
    // Vacuumed until every page of deliveries is all-visible, as autovacuum keeps a live table: an
    // index-only scan's cost counts a heap fetch per row on the other pages, and VACUUM cannot mark
    // a page all-visible while a transaction older than its rows runs anywhere in the database
    // (another suite's, beside this one).
    const until = Date.now() + deadline(30_000);
    for (;;) {
      await client.query("VACUUM ANALYZE deliveries");
      const { rows } = await client.query<{ pending: number }>(
        `SELECT count(*)::int AS pending FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
          WHERE i.inhparent = 'deliveries'::regclass AND c.relpages > 0 AND c.relallvisible < c.relpages`,
      );
      if (rows[0]!.pending === 0 || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  });

  afterAll(async () => {
    await client?.end();
  });

  test("one statement that reads deliveries through the backlog's partial index, not the table", async () => {
    const statement = largestBacklogsSql(10);
    const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
    // Partitioned: one scan per partition of deliveries. The one holding the 40 000 rows (today's)
    // is read index-only through its copy of deliveries_deliverable_idx; the empty ones around it
    // (VACUUM ANALYZEd: no tuples) may be read any way, at no cost.
    const scans = planNodes(rows[0]!["QUERY PLAN"][0]!.Plan).filter((n) => /^deliveries(_p\d{8}t\d{6})?$/.test(n["Relation Name"] ?? ""));
    const filled = new Set(
      (await client.query<{ relname: string }>("SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND reltuples > 0", [scans.map((n) => n["Relation Name"])])).rows.map((r) => r.relname),
    );
    expect(filled.size).toBe(1);
    const parents = await loadIndexParents(client);
    expect(scans.filter((n) => filled.has(n["Relation Name"]!)).map((n) => [n["Node Type"], parents.get(n["Index Name"] ?? "") ?? n["Index Name"]])).toEqual([["Index Only Scan", "deliveries_deliverable_idx"]]);
    expect((await largestBacklogs(prisma(), 3)).map((b) => b.backlog)).toEqual([200, 200, 200]);
  });
});
