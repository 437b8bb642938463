import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { createInterface } from "node:readline";
import { GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { CLI } from "../helpers/env";
import { onlyOn, startHarness, sqsEndpoint, uniqueName, type Harness } from "../helpers/harness";
import { createSqsClient, SqsQueue } from "../../src/queue/sqs-queue";
import { decodeQueuedMessage } from "../../src/domain/queued-event";
import { freePort } from "../../src/dev/local-services";
import { deadline } from "../helpers/deadlines";

/** The shutdown bound of every role (src/cli/main.ts). */
const BOUND_MS = 10_000;

interface Role {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitForLog(msg: string, ms?: number): Promise<void>;
}

const spawned: ChildProcess[] = [];

/** Spawns the built CLI in a role, with exactly the environment given (nothing inherited but PATH). */
function startRole(role: "api" | "worker", env: Record<string, string>): Role {
  const child = spawn(process.execPath, [CLI, role], {
    env: { PATH: process.env.PATH ?? "", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  spawned.push(child);
  const lines: string[] = [];
  const waiters: Array<{ msg: string; resolve: () => void }> = [];
  const onLine = (line: string) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (line.includes(`"msg":"${w.msg}"`)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    child,
    lines,
    exited,
    waitForLog(msg, ms = 15_000) {
      if (lines.some((l) => l.includes(`"msg":"${msg}"`))) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${role} did not log "${msg}" within ${ms} ms:\n${lines.join("\n")}`)), ms);
        waiters.push({ msg, resolve: () => (clearTimeout(timer), resolve()) });
        void exited.then(({ code }) => reject(new Error(`${role} exited (${code}) before logging "${msg}":\n${lines.join("\n")}`)));
      });
    },
  };
}

type Outcome =
  | { kind: "answered"; status: number; id: string | undefined; at: number }
  | { kind: "refused"; code: string; at: number }
  | { kind: "half-answered"; status: number; error: string; at: number };

/** One POST /events on its own connection (Connection: close), so a refusal is unambiguous. */
function postEvent(port: number, key: string, n: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ type: "shutdown.load", payload: { n } });
    let status = 0;
    const req = httpRequest(
      { host: "127.0.0.1", port, method: "POST", path: "/events", agent: false, headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } },
      (res) => {
        status = res.statusCode ?? 0;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let id: string | undefined;
          try {
            id = (JSON.parse(text) as { id?: string }).id;
          } catch {
            resolve({ kind: "half-answered", status, error: `unparsable body ${text.slice(0, 100)}`, at: Date.now() });
            return;
          }
          resolve({ kind: "answered", status, id, at: Date.now() });
        });
        res.on("error", (err) => resolve({ kind: "half-answered", status, error: err.message, at: Date.now() }));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (status !== 0) resolve({ kind: "half-answered", status, error: err.message, at: Date.now() });
      else resolve({ kind: "refused", code: err.code ?? err.message, at: Date.now() });
    });
    req.end(body);
  });
}

onlyOn("postgres", "the api and worker under test are separate processes sharing one database through DATABASE_URL").describe("graceful shutdown of the real processes (SIGTERM)", () => {
  let h: Harness;
  let key: string;
  let sqs: ReturnType<typeof createSqsClient>;
  const queueName = uniqueName("shutdown");
  let env: Record<string, string>;
  const accepted = new Set<string>();

  beforeAll(async () => {
    // The harness provides the migrated schema and the key; the roles under test are separate processes.
    h = await startHarness({ worker: false });
    key = await h.key("shutdown", ["events:write", "inbox:read"]);
    sqs = createSqsClient({ region: h.config.sqs.region, endpoint: sqsEndpoint() });
    env = {
      DATABASE_URL: h.databaseUrl,
      SQS_ENDPOINT: sqsEndpoint(),
      SQS_QUEUE_NAME: queueName,
      HOST: "127.0.0.1",
      TRIGGERS_DATA_DIR: "/tmp/triggers-test-unused",
      RATE_LIMIT_PER_MINUTE: "100000000",
      WORKER_WAIT_SECONDS: "1",
      WORKER_RECEIVERS: "1",
      // Messages a stopped worker received but never stored come back quickly for the next worker.
      WORKER_VISIBILITY_SECONDS: "3",
      LOG_LEVEL: "info",
    };
  });

  afterAll(async () => {
    for (const child of spawned) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    sqs?.destroy();
    await h.close();
  });

  const queue = async () => new SqsQueue(sqs, (await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl!);
  /** Ids of the events in the queue's visible messages (one message may carry several); leaves them visible. */
  const queuedIds = async (q: SqsQueue): Promise<string[]> => {
    const ids: string[] = [];
    const handles: string[] = [];
    for (;;) {
      const got = await q.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 });
      if (got.length === 0) break;
      for (const m of got) {
        handles.push(m.receiptHandle);
        const decoded = decodeQueuedMessage(m.body);
        expect(decoded.invalid).toBe(0);
        ids.push(...decoded.events.map((e) => e.id));
      }
    }
    await q.changeVisibility(handles, 0);
    return ids;
  };
  const storedIds = async () => (await h.sql<{ id: string }>("SELECT id FROM events WHERE tenant_id = 'shutdown' ORDER BY id")).map((r) => r.id);

  test("api: SIGTERM under concurrent load answers every accepted request 202, refuses the rest, enqueues exactly the 202s, exits 0 within the bound", async () => {
    const port = await freePort();
    const api = startRole("api", { ...env, PORT: String(port), METRICS_PORT: String(await freePort()) });
    await api.waitForLog("api listening");

    const outcomes: Outcome[] = [];
    let signalledAt = 0;
    let n = 0;
    const loop = async () => {
      for (;;) {
        const o = await postEvent(port, key, n++);
        outcomes.push(o);
        if (o.kind !== "answered" && signalledAt > 0) return;
        if (o.kind === "answered" && o.status !== 202) return; // fails below
        if (signalledAt > 0 && Date.now() - signalledAt > BOUND_MS) return;
      }
    };
    const loops = Array.from({ length: 16 }, loop);
    // Let the load build up, then stop the API in the middle of it.
    while (outcomes.filter((o) => o.kind === "answered").length < 300) await new Promise((r) => setTimeout(r, 10));
    signalledAt = Date.now();
    api.child.kill("SIGTERM");
    const exit = await api.exited;
    await Promise.all(loops);

    expect(exit).toEqual(expect.objectContaining({ code: 0, signal: null }));
    expect(exit.at - signalledAt).toBeLessThan(BOUND_MS);
    expect(api.lines.some((l) => l.includes('"msg":"shutdown complete"'))).toBe(true);

    const halfAnswered = outcomes.filter((o) => o.kind === "half-answered");
    expect(halfAnswered).toEqual([]);
    const answered = outcomes.filter((o): o is Extract<Outcome, { kind: "answered" }> => o.kind === "answered");
    expect(answered.filter((o) => o.status !== 202)).toEqual([]);
    const refused = outcomes.filter((o): o is Extract<Outcome, { kind: "refused" }> => o.kind === "refused");
    // Refusals only once the shutdown began, and only at the connection level.
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.at).toBeGreaterThanOrEqual(signalledAt);
      expect(["ECONNREFUSED", "ECONNRESET"]).toContain(r.code);
    }
    // Requests in flight at SIGTERM were answered, not cut: some 202s came after the signal.
    expect(answered.filter((a) => a.at > signalledAt).length).toBeGreaterThan(0);
    for (const a of answered) accepted.add(a.id!);
    expect(accepted.size).toBe(answered.length);

    // Exactly the accepted events reached the queue: no 202 without a message, no message without a 202.
    const q = await queue();
    expect((await q.depth()).inFlight).toBe(0);
    const queued = await queuedIds(q);
    expect(queued.length).toBe(accepted.size);
    expect(new Set(queued)).toEqual(accepted);
  }, deadline(60_000));

  test("worker: SIGTERM while draining commits what it holds, deletes nothing it did not commit, exits 0; a second worker stores the rest exactly once", async () => {
    expect(accepted.size).toBeGreaterThan(0);
    const q = await queue();
    const metricsPort = await freePort();
    const worker = startRole("worker", { ...env, PORT: String(await freePort()), METRICS_PORT: String(metricsPort) });
    await worker.waitForLog("metrics server listening");
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { postgres: { ok: true }, schema: { ok: true }, sqs: { ok: true } } });

    // Stop it as soon as it has stored something, i.e. in the middle of the drain.
    await h.eventually(async () => (await storedIds()).length > 0, 15_000);
    const signalledAt = Date.now();
    worker.child.kill("SIGTERM");
    const exit = await worker.exited;
    expect(exit).toEqual(expect.objectContaining({ code: 0, signal: null }));
    expect(exit.at - signalledAt).toBeLessThan(BOUND_MS);

    // Every message that left the queue has its rows: an accepted event that is neither stored nor
    // in a visible message can only be in a message still in flight (received, not committed).
    const stored = await storedIds();
    for (const id of stored) expect(accepted.has(id)).toBe(true);
    const { inFlight } = await q.depth();
    const seen = new Set([...stored, ...(await queuedIds(q))]);
    const unaccounted = [...accepted].filter((id) => !seen.has(id));
    if (unaccounted.length > 0) expect(inFlight).toBeGreaterThan(0);

    // A second worker drains the rest (messages the first had received but not stored come back after their visibility timeout).
    const second = startRole("worker", { ...env, PORT: String(await freePort()), METRICS_PORT: String(await freePort()) });
    await h.eventually(async () => (await storedIds()).length >= accepted.size, 30_000);
    await h.eventually(async () => {
      const d = await q.depth();
      return d.visible === 0 && d.inFlight === 0;
    }, 15_000);
    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);

    const rows = await h.sql<{ n: number; distinct_ids: number }>("SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct_ids FROM events WHERE tenant_id = 'shutdown'");
    expect(rows[0]).toEqual({ n: accepted.size, distinct_ids: accepted.size });
    expect(new Set(await storedIds())).toEqual(accepted);
  }, deadline(90_000));
});
