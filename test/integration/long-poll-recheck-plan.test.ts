import { loadIndexParents, seqScansThatRead } from "../helpers/partition-plans";
import { Client } from "pg";
import type { Prisma, PrismaClient } from "../../src/generated/prisma/client";
import { probeDeliverable, type DeliverableProbe } from "../../src/store/events/any-deliverable";
import { resolveSubscription } from "../../src/store/subscriptions";
import { TEST_DATABASE_URL } from "../helpers/env";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";
import { storeEvents } from "../helpers/factories";

jest.setTimeout(60_000);

const BACKLOG = 50_000;

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Relation Name"?: string;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}
const nodes = (p: PlanNode): PlanNode[] => [p, ...(p.Plans ?? []).flatMap(nodes)];

/**
 * The long-poll safety re-check is an indexed existence probe per (tenant, subscription, filter),
 * not a scan of the tenant's backlog: with a deep backlog, each probe is an index scan that stops
 * at its first row. Postgres-only: the assertions are on the server's plans.
 */
onlyOn("postgres", "it asserts the Postgres server's query plans").describe("the long-poll re-check probe (Postgres plans)", () => {
  let h: Harness;
  let client: Client;
  let subscriptionId: number;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    client = new Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path="${h.schema}"` });
    await client.connect();
    // The backlog, stored through the store's own insert (pending deliveries of `default`), oldest first.
    const start = Date.now() - 3_600_000;
    await storeEvents(h.c.db.prisma, "deep", Array.from({ length: BACKLOG }, (_, i) => ({ type: "backlog", source: "src", tags: ["b"], payload: {}, receivedAt: new Date(start + i) })));
    subscriptionId = (await resolveSubscription(h.c.db.prisma, "deep", "default"))!;
    await client.query("ANALYZE deliveries");
  });
  afterAll(async () => {
    await client.end();
    await h.close();
  });

  test("probes with and without a type filter, over a deep backlog, each read at most one index row", async () => {
    const probes: DeliverableProbe[] = [
      { tenantId: "deep", subscriptionId, filter: {} },
      { tenantId: "deep", subscriptionId, filter: { type: "wanted" } },
      { tenantId: "deep", subscriptionId, filter: { source: "src" } },
    ];
    let statement: [string, unknown[]] | undefined;
    const capture = { $queryRaw: async (sql: Prisma.Sql) => ((statement = [sql.text, sql.values]), []) } as unknown as PrismaClient;
    await probeDeliverable(capture, probes);
    const explained = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement![0]}`, statement![1]);
    const all = nodes(explained.rows[0]!["QUERY PLAN"][0]!.Plan);
    // Partitioned: each probe is an ordered walk of the partitions' copies of one index; the walk
    // stops at the first row, so it reads at most one row over all partitions.
    expect(seqScansThatRead(all)).toEqual([]);
    const parents = await loadIndexParents(client);
    const scans = all.filter((n) => n["Node Type"] === "Index Scan");
    expect([...new Set(scans.map((n) => parents.get(n["Index Name"]!) ?? n["Index Name"]))].sort()).toEqual(["deliveries_deliverable_idx", "deliveries_deliverable_source_idx", "deliveries_deliverable_type_idx"]);
    for (const index of ["deliveries_deliverable_idx", "deliveries_deliverable_source_idx", "deliveries_deliverable_type_idx"]) {
      const read = scans
        .filter((n) => parents.get(n["Index Name"]!) === index)
        .reduce((sum, n) => sum + ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0)) * (n["Actual Loops"] ?? 1), 0);
      expect({ index, read: read <= 1 }).toEqual({ index, read: true });
    }
    // And what it answers: the unfiltered and source probes find the backlog, the type probe nothing.
    expect([...(await probeDeliverable(h.c.db.prisma, probes))].sort()).toEqual([0, 2]);
  });
});
