/**
 * Reading plans over the partitioned events and deliveries (migration 20261207000100): a scan of
 * the parent is an Append of one scan per partition, each on the partition's own copy of the
 * partitioned index (named after the partition), so plan tests name indexes by their parent and
 * tables by their parent.
 */

interface PlanNodeLike {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
}

/** Each partition index's partitioned (parent) index, from pg_inherits: deliveries_p…_idx → deliveries_deliverable_idx. */
export async function loadIndexParents(db: { query(sql: string): Promise<{ rows: Array<{ child: string; parent: string }> }> }): Promise<Map<string, string>> {
  const r = await db.query(
    `SELECT c.relname AS child, p.relname AS parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     WHERE c.relkind = 'i' AND p.relkind = 'I'`,
  );
  return new Map(r.rows.map((x) => [x.child, x.parent]));
}

/** The table a relation of a plan belongs to: a partition's parent (events_p20260101t000000 → events), else itself. */
export function parentTable(relation: string | undefined): string | undefined {
  return relation?.replace(/_p\d{8}t\d{6}$/, "");
}

/**
 * Sequential scans that read rows (EXPLAIN ANALYZE): the planner's cheapest way through an empty
 * partition is a sequential scan of nothing, which costs nothing; a sequential scan that read a
 * row is a scan of a table's (partition's) contents, which the plan tests forbid.
 */
export function seqScansThatRead(plan: readonly PlanNodeLike[]): string[] {
  return plan
    .filter((n) => n["Node Type"] === "Seq Scan" && ((n["Actual Rows"] ?? 0) + (n["Rows Removed by Filter"] ?? 0)) * (n["Actual Loops"] ?? 1) > 0)
    .map((n) => n["Relation Name"] ?? "?");
}
