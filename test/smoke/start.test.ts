import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CLI } from "../helpers/env";
import { launchChromium } from "../helpers/chromium";
import { validatorAt } from "../helpers/openapi-validator";
import { freePort } from "../../src/dev/local-services";
import { deadline, waitFor } from "../helpers/deadlines";

/**
 * The newcomer's path, on the real entry point: the built CLI's `start` as a child process, on a
 * data dir that does not exist yet, with nothing configured but a free PORT (embedded PGlite,
 * in-process SQS emulator, no Redis). It walks the README walk-through and every GET /inbox form
 * of the OpenAPI document on the first process life, opens the event console in Chromium with the
 * printed key and sees the walk-through's events, then restarts on the same data dir.
 * Every response is checked against the served OpenAPI document, and none may be a 5xx.
 */

/** PGlite's initdb on a busy machine, the emulator and the migrations: generous, and still bounded. */
const START_MS = deadline(90_000);
jest.setTimeout(deadline(240_000));

interface Started {
  readonly child: ChildProcess;
  readonly base: string;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

const children: ChildProcess[] = [];
let root: string;
let dataDir: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `triggers-smoke-${process.pid}-`));
  dataDir = join(root, "data"); // does not exist yet: `start` creates it
});

afterAll(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** Spawns `triggers start` with only PATH, PORT, HOST and the data dir in its environment. */
async function start(): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "start"], {
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), TRIGGERS_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`start did not come up within ${START_MS} ms:\n${lines.join("\n")}`)), START_MS);
    const onLine = (line: string) => {
      lines.push(line);
      if (line.startsWith("Triggers is running on")) {
        clearTimeout(timer);
        resolve();
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`start exited (${code}) before it was running:\n${lines.join("\n")}`));
    });
  });
  await running;
  return { child, base: `http://127.0.0.1:${port}`, lines, exited };
}

/** SIGTERM, then the exit code (the CLI bounds its shutdown at 10 s). */
async function stop(s: Started): Promise<number | null> {
  s.child.kill("SIGTERM");
  return s.exited;
}

function client(s: Started, key: string) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${s.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(deadline(10_000)),
    });
    const text = await res.text();
    (await validatorAt(s.base)).validate({ method, path, status: res.status, headers: res.headers, text });
    if (res.status >= 500) throw new Error(`${method} ${path} answered ${res.status}: ${text}\n${s.lines.slice(-20).join("\n")}`);
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
}

function eventually<T>(fn: () => Promise<T | undefined | false>): Promise<T> {
  return waitFor(fn, { timeoutMs: 15_000, intervalMs: 50 });
}

test("`triggers start` on a fresh data dir: the walk-through and every GET /inbox form on the first run, and the events survive a restart", async () => {
  const first = await start();
  expect(first.lines.join("\n")).toMatch(/embedded PGlite, in-process SQS emulator, no Redis/);
  // The banner names the event console, and the console answers there.
  const consoleLine = await eventually(async () => first.lines.find((l) => l.startsWith("Event console: ")));
  expect(consoleLine).toBe(`Event console: ${first.base}/console (paste the key above)`);
  expect((await fetch(`${first.base}/console`, { signal: AbortSignal.timeout(deadline(10_000)) })).status).toBe(200);
  const key = readFileSync(join(dataDir, "dev-api-key"), "utf8").trim();
  const call = client(first, key);

  // The README walk-through: POST, then its status until the worker stored it.
  const post = await call("POST", "/events", { type: "order.created", payload: { id: 42 }, tags: ["eu"] }, { "Idempotency-Key": "order-42" });
  expect(post.status).toBe(202);
  const id = post.body.id as string;
  const stored = await eventually(async () => {
    const r = await call("GET", `/events/${id}`);
    return r.status === 200 && r.body.status === "pending" ? r.body : undefined;
  });
  expect(stored).toMatchObject({ id, type: "order.created", payload: { id: 42 }, tags: ["eu"] });
  const replay = await call("POST", "/events", { type: "order.created", payload: { id: 42 }, tags: ["eu"] }, { "Idempotency-Key": "order-42" });
  expect([replay.status, replay.body.id]).toEqual([202, id]);

  // Four more, of other types, sources and tags, so there are pages and filters to apply.
  const batch = await call("POST", "/events/batch", {
    events: [
      { type: "order.paid", source: "shop", payload: { n: 1 }, tags: ["us"] },
      { type: "order.paid", source: "shop", payload: { n: 2 }, tags: ["eu", "vip"] },
      { type: "user.created", source: "auth", payload: { n: 3 } },
      { type: "user.created", source: "auth", payload: { n: 4 }, tags: ["eu"] },
    ],
  });
  expect(batch.status).toBe(202);
  const ids = [id, ...(batch.body.data as Array<{ id: string }>).map((e) => e.id)];
  await eventually(async () => (await call("GET", "/inbox?mode=peek&status=pending&limit=10")).body.data.length === 5);

  // The first acceptance line of the console: open /console, paste the printed key, the
  // walk-through's events are there. Through the listing its Events page reads, then in Chromium.
  const banner = first.lines.findIndex((l) => l.startsWith("Development API key"));
  const printed = (first.lines[banner + 2] ?? "").trim();
  expect(printed).toBe(key);
  const listed = await call("GET", "/events?limit=50");
  expect(listed.status).toBe(200);
  expect((listed.body.data as Array<{ id: string }>).map((e) => e.id).sort()).toEqual([...ids].sort());
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`${first.base}/console`);
    await page.getByLabel("API key").fill(printed);
    await page.getByRole("button", { name: "Sign in" }).click();
    const rows = page.locator("[data-testid=event-table] tbody tr");
    await waitFor(async () => (await rows.count()) === ids.length, { timeoutMs: 15_000, what: "the walk-through's events in the console" });
    expect((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-event-id")))).sort()).toEqual([...ids].sort());
  } finally {
    await browser.close();
  }

  // Peek: every status, with and without a status, and a second page by cursor.
  for (const status of ["", "&status=pending", "&status=delivered", "&status=acknowledged", "&status=dead"]) {
    const r = await call("GET", `/inbox?mode=peek${status}`);
    expect([status, r.status]).toEqual([status, 200]);
  }
  const page1 = await call("GET", "/inbox?mode=peek&limit=2");
  expect(page1.body.data).toHaveLength(2);
  expect(typeof page1.body.next_cursor).toBe("string");
  const page2 = await call("GET", `/inbox?mode=peek&limit=2&cursor=${page1.body.next_cursor}`);
  expect(page2.status).toBe(200);
  expect(page2.body.data).toHaveLength(2);
  const page2ids = (page2.body.data as Array<{ id: string }>).map((e) => e.id);
  expect(page2ids.some((x) => (page1.body.data as Array<{ id: string }>).some((e) => e.id === x))).toBe(false);
  const page2pending = await call("GET", `/inbox?mode=peek&status=pending&limit=2`);
  const page3pending = await call("GET", `/inbox?mode=peek&status=pending&limit=2&cursor=${page2pending.body.next_cursor}`);
  expect(page3pending.status).toBe(200);
  const since = new Date(Date.now() - 3_600_000).toISOString();
  const until = new Date(Date.now() + 3_600_000).toISOString();
  for (const filter of ["type=order.paid", "source=auth", "tag=eu", `since=${since}`, `until=${until}`]) {
    const r = await call("GET", `/inbox?mode=peek&${filter}`);
    expect([filter, r.status]).toEqual([filter, 200]);
  }

  // Lease with each filter; each leases what matches and nothing else.
  const leased: string[] = [];
  const lease = async (qs: string) => {
    const r = await call("GET", `/inbox?${qs}`);
    expect([qs, r.status]).toEqual([qs, 200]);
    const got = (r.body.data as Array<{ id: string; lease_id: string }>).map((e) => e.id);
    leased.push(...got);
    return r.body.data as Array<{ id: string; type: string; source: string | null; tags: string[]; lease_id: string }>;
  };
  expect((await lease("type=order.paid&limit=10&visibility_timeout=60")).map((e) => e.type)).toEqual(["order.paid", "order.paid"]);
  expect((await lease("source=auth&limit=1&visibility_timeout=60")).map((e) => e.source)).toEqual(["auth"]);
  expect((await lease("tag=eu&limit=10&visibility_timeout=60")).every((e) => e.tags.includes("eu"))).toBe(true);
  await lease(`since=${since}&limit=10`);
  await lease(`until=${until}&limit=10`);
  await lease("mode=lease&limit=10");
  expect([...leased].sort()).toEqual([...ids].sort());
  expect((await call("GET", "/inbox?mode=peek&status=delivered&limit=10")).body.data).toHaveLength(5);

  // Ack, one and then the rest in a batch; the acknowledged are listed by peek status=acknowledged.
  const ack = await call("POST", `/events/${id}/ack`);
  expect([ack.status, ack.body.status]).toEqual([200, "acknowledged"]);
  const acks = await call("POST", "/events/ack", { ids: ids.slice(1, 3) });
  expect(acks.status).toBe(200);
  expect((await call("GET", "/inbox?mode=peek&status=acknowledged")).body.data).toHaveLength(3);

  // Restart on the same data dir: the stored events and their states are still there.
  expect(await stop(first)).toBe(0);
  const second = await start();
  expect(readFileSync(join(dataDir, "dev-api-key"), "utf8").trim()).toBe(key);
  const again = client(second, key);
  const after = await again("GET", `/events/${id}`);
  expect([after.status, after.body.status]).toEqual([200, "acknowledged"]);
  const all = await again("GET", "/inbox?mode=peek&limit=10");
  expect((all.body.data as Array<{ id: string }>).map((e) => e.id).sort()).toEqual([...ids].sort());
  expect((await again("GET", "/inbox?mode=peek&status=acknowledged")).body.data).toHaveLength(3);
  expect(await stop(second)).toBe(0);
});
