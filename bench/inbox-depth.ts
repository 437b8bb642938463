/**
 * The inbox at depth: lease and peek latency with 1 M, 5 M and 10 M pending events waiting.
 *
 * One tenant ("deep") holds the backlog: 99 % of its events are type `common`, source
 * `common-source`, tag `common`; the last 1 % in inbox order (received_at) are type `rare`,
 * source `rare-source`, tag `rare`. A second tenant holds a small backlog of its own. The fill is
 * SQL generate_series, grown depth by depth (rare rows stay at the end), then VACUUM ANALYZE.
 *
 * For each depth and case it runs leaseEvents / peekEvents (the store's own statements) on one pg
 * connection BENCH_SAMPLES times; each lease runs inside BEGIN … ROLLBACK so every sample sees the
 * same backlog. It prints p50/p99 (ms), the events returned and has_more (peek: a next_cursor), and
 * the shared buffers one run touches (EXPLAIN ANALYZE, BUFFERS): latency on a shared machine follows
 * its load, buffers do not.
 * Aim: lease p99 < 10 ms at every depth for every filter kind, and p99(10 M) / p99(1 M) <= 1.5.
 *
 *   BENCH_DEPTHS   (default 1000000,5000000,10000000)
 *   BENCH_SAMPLES  (default 100 per case and depth)
 *   BENCH_LIMIT    (default 50, the lease/peek batch)
 * The schema is dropped at the end (BENCH_KEEP_SCHEMA=1 keeps it and prints its name).
 */
import { Client, types as pgTypes, type CustomTypesConfig } from "pg";
import type { Prisma, PrismaClient } from "../src/generated/prisma/client";
import { leaseEvents } from "../src/store/events/lease-events";
import { peekEvents, type EventStatus } from "../src/store/events/peek-events";
import type { InboxFilter } from "../src/store/events/inbox-filter";
import { connectPostgres } from "../src/store/database";
import { applyMigrations, loadMigrations } from "../src/store/migrate/migrations";
import { benchSchema, fmt, percentile, runBench } from "./support";

const DEPTHS = (process.env.BENCH_DEPTHS ?? "1000000,5000000,10000000").split(",").map(Number);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 100);
const LIMIT = Number(process.env.BENCH_LIMIT ?? 50);
const TENANT = "deep";
const COMMON_START = Date.parse("2026-01-01T00:00:00.000Z");
const RARE_START = Date.parse("2026-06-01T00:00:00.000Z");

/** Rows [from, to) of the common part and of the rare part, so the backlog grows in place. */
function fillSql(kind: "common" | "rare", from: number, to: number, start: number): string {
  const at = `to_timestamp(${start / 1000}) + i * interval '1 millisecond'`;
  // The event and its delivery of the tenant's default subscription (created before the first fill).
  return `WITH src AS (SELECT 'evt_${kind}_' || lpad(i::text, 12, '0') AS id, i, ${at} AS at FROM generate_series(${from}, ${to - 1}) AS i),
    ev AS (
      INSERT INTO events (id, tenant_id, type, source, payload, tags, body_hash, received_at, stored_at)
      SELECT id, '${TENANT}', '${kind}', '${kind}-source',
             jsonb_build_object('n', i, 'note', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'),
             ARRAY['${kind}', 'bench'], 'h', at, at
      FROM src
    )
    INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at, available_at)
    SELECT s.id, src.id, '${TENANT}', '${kind}', '${kind}-source', ARRAY['${kind}', 'bench'], src.at, src.at
    FROM src JOIN subscriptions s ON s.tenant_id = '${TENANT}' AND s.name = 'default'`;
}

/** The bench tenant's default subscription id (created by main before the first fill). */
let subscriptionId = 0;

interface Result {
  readonly p50: number;
  readonly p99: number;
  readonly rows: number;
  readonly hasMore: string;
  readonly buffers: number;
}

interface Case {
  readonly name: string;
  readonly mode: "lease" | "peek";
  readonly filter: InboxFilter;
  readonly status?: EventStatus;
}

/** The cases; `since` and `until` are computed per depth so they select exactly the rare tail. */
function cases(rareFrom: Date, rareTo: Date): Case[] {
  const filters: Array<[string, InboxFilter]> = [
    ["no filter", {}],
    ["type (1 % at end)", { type: "rare" }],
    ["source (1 % at end)", { source: "rare-source" }],
    ["tag (1 % at end)", { tags: ["rare"] }],
    ["tag (99 %)", { tags: ["common"] }],
    ["since (1 % at end)", { since: rareFrom }],
    ["since+until (1 % at end)", { since: rareFrom, until: rareTo }],
    ["type+tag (1 % at end)", { type: "rare", tags: ["rare"] }],
  ];
  // Peeks first: a rolled-back lease leaves dead index entries behind (one per index per row per
  // sample, on the same oldest rows), which every later scan of that range walks over until the
  // VACUUM after the next fill. They make the later lease cases of a depth pessimistic by the same
  // amount at every depth; running the peeks first keeps them out of the peek figures.
  return [
    ...filters.map(([name, filter]): Case => ({ name, mode: "peek", filter, status: "pending" })),
    { name: "type (1 % at end), any status", mode: "peek", filter: { type: "rare" } },
    ...filters.map(([name, filter]): Case => ({ name, mode: "lease", filter })),
  ];
}

/** Column values as the Prisma client answers them, so the store's row shapes hold: bigint (count(*), row_number()) as a BigInt, not text. */
const AS_PRISMA: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === pgTypes.builtins.INT8 ? BigInt : pgTypes.getTypeParser(oid, format))) as CustomTypesConfig["getTypeParser"],
};

/**
 * Runs one case through the store's own function (leaseEvents / peekEvents) on `client`, so the
 * statement, its parameters and the answer (events, has_more / next_cursor) are exactly the store's.
 */
async function runCase(client: Client, c: Case): Promise<{ events: number; more: boolean }> {
  const prisma = {
    $queryRaw: async (statement: Prisma.Sql) => (await client.query({ text: statement.text, values: statement.values, types: AS_PRISMA })).rows,
  } as unknown as PrismaClient;
  if (c.mode === "lease") {
    const r = await leaseEvents(prisma, { tenantId: TENANT, subscriptionId, limit: LIMIT, visibilitySeconds: 30, maxDeliveries: 10, filter: c.filter });
    return { events: r.events.length, more: r.hasMore };
  }
  const r = await peekEvents(prisma, { tenantId: TENANT, subscriptionId, limit: LIMIT, status: c.status, filter: c.filter });
  return { events: r.events.length, more: r.next !== null };
}

/** Shared buffers (hit + read) one run of the case's statement touches: the load-independent cost. */
async function buffersOf(client: Client, c: Case): Promise<number> {
  const captured: Array<{ sql: string; params: unknown[] }> = [];
  const spy = {
    $queryRaw: async (statement: Prisma.Sql) => {
      captured.push({ sql: statement.text, params: statement.values });
      return [];
    },
  } as unknown as PrismaClient;
  if (c.mode === "lease") await leaseEvents(spy, { tenantId: TENANT, subscriptionId, limit: LIMIT, visibilitySeconds: 30, maxDeliveries: 10, filter: c.filter });
  else await peekEvents(spy, { tenantId: TENANT, subscriptionId, limit: LIMIT, status: c.status, filter: c.filter });
  let total = 0;
  for (const { sql, params } of captured) {
    await client.query("BEGIN");
    try {
      const r = await client.query<{ "QUERY PLAN": Array<{ Plan: Record<string, number> }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
      const plan = r.rows[0]!["QUERY PLAN"][0]!.Plan;
      total += (plan["Shared Hit Blocks"] ?? 0) + (plan["Shared Read Blocks"] ?? 0);
    } finally {
      await client.query("ROLLBACK");
    }
  }
  return total;
}

async function measure(client: Client, c: Case): Promise<Result> {
  const buffers = await buffersOf(client, c); // before the samples add their own dead entries
  const times: number[] = [];
  let rows = 0;
  let hasMore = "";
  for (let i = 0; i < SAMPLES + 5; i++) {
    if (c.mode === "lease") await client.query("BEGIN");
    const t0 = performance.now();
    const r = await runCase(client, c);
    const ms = performance.now() - t0;
    if (c.mode === "lease") await client.query("ROLLBACK");
    if (i < 5) continue; // warm-up
    times.push(ms);
    rows = r.events;
    hasMore = String(r.more);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), rows, hasMore, buffers };
}

async function main(): Promise<void> {
  const schema = await benchSchema();
  const db = connectPostgres(schema.url, { poolSize: 2 });
  const client = new Client({ connectionString: schema.url.split("?")[0], options: `-c search_path="${schema.schema}" -c statement_timeout=900000` });
  const results = new Map<string, Map<number, Result>>();
  try {
    await applyMigrations(db.migrator, loadMigrations());
    await db.close();
    await client.connect();
    const indexes = (await client.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'events' ORDER BY 1", [schema.schema])).rows.map((r) => r.indexname);
    process.stdout.write(`bench:inbox-depth  schema=${schema.schema} samples=${SAMPLES} limit=${LIMIT}\n  indexes on events: ${indexes.join(", ")}\n`);
    // The fixture's fixed times need their partitions, as the worker's insert would make them.
    for (const start of [COMMON_START, RARE_START]) {
      await client.query(`SELECT triggers_ensure_partitions(to_timestamp(${start / 1000}), to_timestamp(${start / 1000}) + interval '1 day', NULL)`);
    }
    await client.query(fillSql("common", 0, 2000, COMMON_START).replace(`'${TENANT}'`, "'shallow'").replace(/evt_common_/, "evt_shallow_"));
    let filled = 0;
    await client.query(`INSERT INTO subscriptions (tenant_id, name) VALUES ('${TENANT}', 'default') ON CONFLICT DO NOTHING`);
    subscriptionId = (await client.query<{ id: number }>(`SELECT id FROM subscriptions WHERE tenant_id = '${TENANT}' AND name = 'default'`)).rows[0]!.id;
    for (const depth of DEPTHS) {
      const t0 = performance.now();
      const rareBefore = Math.round(filled * 0.01);
      const rareAfter = Math.round(depth * 0.01);
      await client.query(fillSql("common", filled - rareBefore, depth - rareAfter, COMMON_START));
      await client.query(fillSql("rare", rareBefore, rareAfter, RARE_START));
      filled = depth;
      // INDEX_CLEANUP ON: the previous depth's rolled-back leases left dead index entries at the
      // head of the backlog, and VACUUM would otherwise skip the indexes when so few pages hold them.
      await client.query("VACUUM (ANALYZE, INDEX_CLEANUP ON) events");
      await client.query("VACUUM (ANALYZE, INDEX_CLEANUP ON) deliveries");
      const count = (await client.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = $1", [TENANT])).rows[0]!.n;
      process.stdout.write(`  filled ${fmt(Number(count))} pending events for tenant ${TENANT} in ${fmt((performance.now() - t0) / 1000, 1)} s\n`);
      const rareFrom = new Date(RARE_START);
      const rareTo = new Date(RARE_START + rareAfter + 1);
      for (const c of cases(rareFrom, rareTo)) {
        const key = `${c.mode.padEnd(5)} ${c.name}`;
        const r = await measure(client, c);
        if (!results.has(key)) results.set(key, new Map());
        results.get(key)!.set(depth, r);
        process.stdout.write(`    ${key.padEnd(40)} p50 ${fmt(r.p50, 2).padStart(8)} ms  p99 ${fmt(r.p99, 2).padStart(8)} ms  rows ${r.rows}  has_more ${r.hasMore}  buffers ${r.buffers}\n`);
      }
    }
    // Markdown table: p50 / p99 per depth, and the ratio of the deepest to the shallowest p99.
    const label = (d: number) => `${d / 1_000_000} M`;
    const first = DEPTHS[0]!;
    const last = DEPTHS[DEPTHS.length - 1]!;
    const lines = [
      "",
      `| statement (limit ${LIMIT}) | ${DEPTHS.map((d) => `${label(d)} p50 / p99 ms`).join(" | ")} | p99 ${label(last)} / ${label(first)} | buffers ${DEPTHS.map(label).join(" / ")} | events, more at ${label(last)} |`,
      `|---|${DEPTHS.map(() => "---|").join("")}---|---|---|`,
    ];
    for (const [key, byDepth] of results) {
      const cells = DEPTHS.map((d) => {
        const r = byDepth.get(d)!;
        return `${fmt(r.p50, 2)} / ${fmt(r.p99, 2)}`;
      });
      const deepest = byDepth.get(last)!;
      lines.push(`| ${key.replace(/\s+/, " ")} | ${cells.join(" | ")} | ${fmt(deepest.p99 / byDepth.get(first)!.p99, 2)} | ${DEPTHS.map((d) => byDepth.get(d)!.buffers).join(" / ")} | ${deepest.rows}, ${deepest.hasMore} |`);
    }
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await client.end().catch(() => undefined);
    await db.close();
    if (process.env.BENCH_KEEP_SCHEMA === "1") process.stdout.write(`kept schema ${schema.schema}\n`);
    else await schema.drop();
  }
}

runBench(main);
