/**
 * Charges the busy samples of a CPU profile (`bench:ingest` with BENCH_PROFILE_DIR) to ingest
 * stages: each sample goes to the innermost frame on its stack that belongs to a stage (a socket
 * write under a Koa frame, or under respondJson's writeHead of a 202, counts as Koa), or to "node
 * http/net I/O outside any stage". Samples of module loading are left out. With the CPU per
 * request of that run, prints µs per stage. Every lru-cache frame counts as auth: on the bench's
 * key-less sends with Redis up, the key cache is the only LRU a request touches.
 *   node dist/bench/profile-stages.js <file.cpuprofile> [µs per request]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

type Rule = readonly [stage: string, matches: (fn: string, url: string) => boolean];

const OUTSIDE = "node http/net I/O outside any stage";
const ends = (url: string, ...suffixes: string[]) => suffixes.some((s) => url.endsWith(s));

/** First match wins, innermost frame first. */
const RULES: readonly Rule[] = [
  ["GC", (fn) => fn === "(garbage collector)"],
  ["V8 (program)", (fn) => fn === "(program)"],
  ["log line (pino)", (_, u) => u.includes("/pino/") || u.includes("sonic-boom") || ends(u, "observability/logger.js")],
  ["metrics (prom-client)", (_, u) => u.includes("prom-client")],
  ["Redis client (ioredis)", (_, u) => ["ioredis", "redis-parser", "standard-as-callback", "cluster-key-slot"].some((p) => u.includes(p))],
  ["AWS SDK + SendBatcher", (_, u) => ["@aws-sdk", "@smithy", "fast-xml-parser"].some((p) => u.includes(p)) || ends(u, "send-batcher.js", "sqs-queue.js")],
  ["hashing (canonical JSON or raw body + sha256)", (fn) => fn === "canonicalJson" || fn === "envelopeHash" || fn === "bodyHash"],
  ["encoding of the queued event", (_, u) => ends(u, "queued-event.js")],
  ["validation (compiled schema)", (_, u) => ends(u, "envelope.js") || u.includes("/ajv/")],
  ["body read, JSON parse, exact-number check", (_, u) => ends(u, "json-body.js") || ["secure-json-parse", "raw-body", "iconv-lite"].some((p) => u.includes(p))],
  ["auth (key hash, LRU)", (fn, u) => ends(u, "middleware/auth.js") || u.includes("lru-cache") || (ends(u, "domain/ids.js") && fn === "hashApiKey")],
  ["limiter", (_, u) => ends(u, "rate-limit.js", "shared-window.js") || u.includes("koa-ratelimit")],
  ["accept step, id, receipts", (_, u) => ends(u, "accept-events.js", "accepted-receipts.js", "idempotency.js", "domain/ids.js") || u.includes("/ulid/")],
  ["request context (id, log call, metrics call)", (_, u) => ends(u, "request-context.js")],
  ["route handler, app, error layer", (_, u) => ends(u, "routes/events.js", "api/app.js", "middleware/errors.js", "minimal-pipeline.js")],
  [
    "Koa and node http under Koa frames",
    (_, u) => ends(u, "api/response-headers.js") || ["/koa/", "koa-compose", "/delegates/", "on-finished", "statuses", "content-type", "type-is", "cache-content-type", "mime-types"].some((p) => u.includes(p)),
  ],
];

const STARTUP = new Set(["Module._load", "compileForInternalLoader", "wrapSafe"]);

function main(): void {
  const [file, perRequestArg] = process.argv.slice(2);
  if (!file) {
    console.error("usage: node dist/bench/profile-stages.js <file.cpuprofile> [µs per request]");
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = new Map<number, string | null>(); // null: module loading, left out
  const classify = (id: number): string | null => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    let stage: string | undefined;
    let startup = false;
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const { functionName, url } = nodes.get(x)!.callFrame;
      if (STARTUP.has(functionName)) startup = true;
      stage ??= RULES.find(([, matches]) => matches(functionName, url))?.[0];
    }
    const result = startup ? null : (stage ?? OUTSIDE);
    stageOf.set(id, result);
    return result;
  };
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of profile.samples) {
    if (nodes.get(id)!.callFrame.functionName === "(idle)") continue;
    const stage = classify(id);
    if (stage === null) continue;
    busy++;
    counts.set(stage, (counts.get(stage) ?? 0) + 1);
  }
  const perRequest = perRequestArg === undefined ? undefined : Number(perRequestArg);
  for (const [stage, n] of [...counts].sort((a, b) => b[1] - a[1])) {
    const share = n / busy;
    console.log(`${(share * 100).toFixed(1).padStart(5)} %${perRequest === undefined ? "" : `  ${(share * perRequest).toFixed(1).padStart(6)} µs`}  ${stage}`);
  }
}

main();
