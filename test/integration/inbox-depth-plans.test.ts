/**
 * Filtered inbox reads at depth: a filtered lease or peek reads what matches, not the backlog.
 *
 * Postgres-only by nature: the assertions are on Postgres query plans (EXPLAIN (ANALYZE, FORMAT
 * JSON): which index each scan uses and how many rows it examined), at a depth where the planner's
 * choice matters. The embedded store (PGlite) has its own planner and statistics and serves one
 * tenant on one machine, so its plans are not what this guards. The behaviour of the bounded tag
 * scan (has_more, next_cursor) is checked through the store functions below.
 */
import { loadIndexParents, parentTable, seqScansThatRead } from "../helpers/partition-plans";
import { Client } from "pg";
import type { Prisma, PrismaClient } from "../../src/generated/prisma/client";
import { leaseEvents } from "../../src/store/events/lease-events";
import { resolveSubscription } from "../../src/store/subscriptions";
import { peekEvents, type EventStatus } from "../../src/store/events/peek-events";
import { TAG_SCAN_LIMIT, type InboxFilter } from "../../src/store/events/inbox-filter";
import type { KeysetPosition } from "../../src/store/events/peek-events";
import { TEST_DATABASE_URL } from "../helpers/env";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { seed } from "./inbox-fixtures";
import { deadline } from "../helpers/deadlines";
import { putInState } from "../helpers/factories";

const DEPTH = 200_000; // "deep": 99 % common, then the last 1 % rare (type, source and tag)
const RARE = DEPTH / 100;
const LIMIT = 50;

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Index Cond"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

onlyOn("postgres", "it asserts the Postgres server's query plans").describe("filtered inbox reads at depth (Postgres plans)", () => {
  let h: Harness;
  let client: Client;
  let deepSubscription: number;
  let indexParents: Map<string, string>;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    client = new Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path="${h.schema}" -c statement_timeout=60000` });
    await client.connect();
    // Events and their deliveries of the tenant's default subscription, in one statement per fill.
    // Raw SQL, not the factories: 250 000 rows through the store's insert would take far longer.
    const fill = async (tenant: string, kind: string, from: number, to: number, startMs: number) => {
      await client.query(`INSERT INTO subscriptions (tenant_id, name) VALUES ($1, 'default') ON CONFLICT DO NOTHING`, [tenant]);
      // The partitions of the fill's time range, as the worker's insert would make them.
      await client.query(`SELECT triggers_ensure_partitions(to_timestamp($1::double precision / 1000), to_timestamp($1::double precision / 1000) + $2::int * interval '1 millisecond', NULL)`, [startMs, to - from + 1]);
      await client.query(
        `WITH src AS (
           SELECT 'evt_' || $1 || '_${kind}_' || lpad(i::text, 8, '0') AS id, to_timestamp($4::double precision / 1000) + i * interval '1 millisecond' AS at
           FROM generate_series($2::int, $3::int - 1) AS i
         ),
         ev AS (
           INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, received_at)
           SELECT id, $1, '${kind}', '${kind}-source', '{}'::jsonb, ARRAY['${kind}'], 'h', at FROM src
         )
         INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, available_at)
         SELECT s.id, src.id, $1, '${kind}', '${kind}-source', ARRAY['${kind}'], src.at, src.at
         FROM src JOIN subscriptions s ON s.tenant_id = $1 AND s.name = 'default'`,
        [tenant, from, to, startMs],
      );
    };
    await fill("deep", "common", 0, DEPTH - RARE, Date.parse("2026-01-01T00:00:00Z"));
    await fill("deep", "rare", 0, RARE, Date.parse("2026-06-01T00:00:00Z"));
    for (let t = 0; t < 10; t++) await fill(`other-${t}`, "rare", 0, 5000, Date.parse("2026-01-01T00:00:00Z"));
    await client.query("VACUUM ANALYZE events");
    await client.query("VACUUM ANALYZE deliveries");
    deepSubscription = (await resolveSubscription(h.c.db.prisma, "deep", "default"))!;
    indexParents = await loadIndexParents(client);
  }, deadline(180_000));
  afterAll(async () => {
    await client?.end();
    await h?.close();
  });

  /** The SQL and parameters the store sends, captured without running them. */
  const capture = async (run: (spy: PrismaClient) => Promise<unknown>) => {
    const captured: Array<{ sql: string; params: unknown[] }> = [];
    const spy = {
      $queryRaw: async (statement: Prisma.Sql) => {
        captured.push({ sql: statement.text, params: statement.values });
        return [];
      },
    } as unknown as PrismaClient;
    await run(spy);
    expect(captured).toHaveLength(1);
    return captured[0]!;
  };
  const leaseSql = (filter: InboxFilter) =>
    capture((spy) => leaseEvents(spy, { tenantId: "deep", subscriptionId: deepSubscription, limit: LIMIT, visibilitySeconds: 30, maxDeliveries: 10, filter }));
  const peekSql = (filter: InboxFilter, status?: EventStatus) => capture((spy) => peekEvents(spy, { tenantId: "deep", subscriptionId: deepSubscription, limit: LIMIT, status, filter }));

  /** Runs EXPLAIN ANALYZE (rolled back, so a lease changes nothing) and returns every plan node. */
  const explain = async ({ sql, params }: { sql: string; params: unknown[] }) => {
    await client.query("BEGIN");
    try {
      const r = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
      return nodes(r.rows[0]!["QUERY PLAN"][0]!.Plan);
    } finally {
      await client.query("ROLLBACK");
    }
  };
  /** Rows the scans on deliveries read: returned plus removed by a filter, over all loops. */
  const examined = (plan: PlanNode[]) =>
    plan
      .filter((n) => parentTable(n["Relation Name"]) === "deliveries" && /Scan/.test(n["Node Type"]))
      .reduce((sum, n) => sum + ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0)) * (n["Actual Loops"] ?? 1), 0);
  // Partitioned: each partition's index stands for its parent (the partitioned index).
  const indexesUsed = (plan: PlanNode[]) => new Set(plan.map((n) => n["Index Name"]).filter(Boolean).map((i) => indexParents.get(i!) ?? i));
  const noSeqScan = (plan: PlanNode[]) => expect(seqScansThatRead(plan)).toEqual([]);

  test.each([
    ["type", { type: "rare" }, "deliveries_deliverable_type_idx"],
    ["source", { source: "rare-source" }, "deliveries_deliverable_source_idx"],
    ["since", { since: new Date("2026-06-01T00:00:00Z") }, "deliveries_deliverable_idx"],
    // since/until prune every partition but June's, where the deep tenant has only rare rows: the
    // plain deliverable index walks nothing but matches there, as good as the type index.
    ["type + since + until", { type: "rare", since: new Date("2026-06-01T00:00:00Z"), until: new Date("2026-07-01T00:00:00Z") }, ["deliveries_deliverable_type_idx", "deliveries_deliverable_idx"]],
  ] as Array<[string, InboxFilter, string | string[]]>)("a lease filtered by %s walks an index that leads with the filter", async (_name, filter, index) => {
    const plan = await explain(await leaseSql(filter));
    noSeqScan(plan);
    const used = indexesUsed(plan);
    expect((typeof index === "string" ? [index] : index).filter((i) => used.has(i))).not.toEqual([]);
    // 50 candidates, 50 updated by primary key, 1 probed for has_more: nowhere near the 198 000
    // non-matching rows ahead of them.
    expect(examined(plan)).toBeLessThan(4 * LIMIT);
  });

  test.each([
    ["type", { type: "rare" }, "pending", "deliveries_deliverable_type_idx"],
    ["source", { source: "rare-source" }, "pending", "deliveries_deliverable_source_idx"],
    ["type, every status", { type: "rare" }, undefined, "deliveries_deliverable_type_idx"],
  ] as Array<[string, InboxFilter, EventStatus | undefined, string]>)("a peek filtered by %s walks an index that leads with the filter", async (_name, filter, status, index) => {
    const plan = await explain(await peekSql(filter, status));
    noSeqScan(plan);
    expect(indexesUsed(plan)).toContain(index);
    expect(examined(plan)).toBeLessThan(4 * (LIMIT + 1));
  });

  test("a tag-filtered lease or peek examines at most TAG_SCAN_LIMIT rows (plus its probes)", async () => {
    for (const stmt of [await leaseSql({ tags: ["rare"] }), await peekSql({ tags: ["rare"] }, "pending"), await peekSql({ tags: ["rare"] })]) {
      const plan = await explain(stmt);
      noSeqScan(plan);
      const n = examined(plan);
      expect(n).toBeGreaterThanOrEqual(TAG_SCAN_LIMIT); // it did look
      expect(n).toBeLessThanOrEqual(2 * TAG_SCAN_LIMIT + 4 * (LIMIT + 1));
    }
  });

  test("a tag lease past its bound leases nothing and says has_more; once the way is clear it finds them", async () => {
    const tenant = "tags-lease";
    const ahead = await seed(h, tenant, TAG_SCAN_LIMIT + 10); // untagged, older
    const tagged = await seed(h, tenant, Array.from({ length: 3 }, () => ({ tags: ["x"] })));
    const subscriptionId = (await resolveSubscription(h.c.db.prisma, tenant, "default"))!;
    const lease = (filter: InboxFilter, limit = LIMIT) => leaseEvents(h.c.db.prisma, { tenantId: tenant, subscriptionId, limit, visibilitySeconds: 300, maxDeliveries: 10, filter });
    const blocked = await lease({ tags: ["x"] });
    expect({ events: blocked.events.length, hasMore: blocked.hasMore }).toEqual({ events: 0, hasMore: true });
    // Leasing the events ahead (unfiltered) leaves fewer than TAG_SCAN_LIMIT deliverable rows in
    // front, so the tag lease reaches the tagged ones, and has_more is exact again.
    expect((await lease({}, 500)).events).toHaveLength(500);
    expect((await lease({}, 500)).events).toHaveLength(500);
    const found = await lease({ tags: ["x"] }, 2);
    expect({ ids: found.events.map((e) => e.id), hasMore: found.hasMore }).toEqual({ ids: tagged.slice(0, 2), hasMore: true });
    const rest = await lease({ tags: ["x"] }, 2);
    expect({ ids: rest.events.map((e) => e.id), hasMore: rest.hasMore }).toEqual({ ids: tagged.slice(2), hasMore: false });
    expect(ahead).toHaveLength(TAG_SCAN_LIMIT + 10);
  });

  test("a tag peek walk crosses its bound with short pages and still sees every match once, in order", async () => {
    const tenant = "tags-peek";
    const fixtures = Array.from({ length: 3 * TAG_SCAN_LIMIT + 500 }, (_, i) => ({ tags: i % 700 === 699 || i > 3 * TAG_SCAN_LIMIT + 400 ? ["x"] : ["y"] }));
    const ids = await seed(h, tenant, fixtures);
    const expected = ids.filter((_, i) => fixtures[i]!.tags[0] === "x");
    // Acknowledge a few, so the walk over every status merges two bounded branches.
    await putInState(h.c.db.prisma, tenant, ids.filter((_, i) => i % 3 === 0), { status: "acknowledged", at: new Date() });
    const subscriptionId = (await resolveSubscription(h.c.db.prisma, tenant, "default"))!;
    for (const status of [undefined, "pending"] as const) {
      const want = status === "pending" ? expected.filter((id) => ids.indexOf(id) % 3 !== 0) : expected;
      const seen: string[] = [];
      let after: KeysetPosition | undefined;
      let pages = 0;
      let shortPages = 0;
      for (;;) {
        const page = await peekEvents(h.c.db.prisma, { tenantId: tenant, subscriptionId, limit: 20, status, filter: { tags: ["x"] }, after });
        seen.push(...page.events.map((e) => e.id));
        pages++;
        if (page.next && page.events.length < 20) shortPages++;
        if (!page.next) break;
        after = page.next;
        expect(pages).toBeLessThan(100);
      }
      expect(seen).toEqual(want);
      expect(shortPages).toBeGreaterThan(0);
    }
  });
});
