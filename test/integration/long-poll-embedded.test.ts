import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Consumer, TriggersClient } from "../../src/client/index";
import { CLI } from "../helpers/env";
import { freePort } from "../../src/dev/local-services";
import { onlyOn } from "../helpers/harness";
import { deadline as scaled } from "../helpers/deadlines";

/**
 * The embedded default, as `triggers start` runs it (PGlite, an in-process SQS emulator, API and
 * worker in one process): long polls are woken by the worker's commit through PGlite's in-process
 * LISTEN/NOTIFY, lease ownership holds, and the client library works against it.
 */
onlyOn("pglite", "it runs the embedded default (triggers start) itself, once").describe("long polling on the embedded default (triggers start)", () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let key: string;
  const output: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "triggers-embedded-"));
    const port = await freePort();
    child = spawn(process.execPath, [CLI, "start"], {
      env: { PATH: process.env.PATH ?? "", TRIGGERS_DATA_DIR: dir, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => output.push(String(d)));
    child.stderr!.on("data", (d: Buffer) => output.push(String(d)));
    url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + scaled(120_000); // PGlite start-up plus migrations can be slow on a loaded machine
    for (;;) {
      const ready = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ready && existsSync(join(dir, "dev-api-key"))) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`triggers start did not come up:\n${output.join("")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    key = readFileSync(join(dir, "dev-api-key"), "utf8").trim();
  }, scaled(150_000));

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("a waiting request gets the event sent while it waits; nack needs the lease_id", async () => {
    const client = new TriggersClient({ baseUrl: url, apiKey: key });
    expect((await client.lease({ type: "embedded.test" })).data).toEqual([]);
    const waiting = client.lease({ waitSeconds: 20, type: "embedded.test" });
    await new Promise((r) => setTimeout(r, 500)); // the request is waiting by now (or answers at once with the event: same result)
    const sentAt = Date.now();
    const sent = await client.send({ type: "embedded.test", payload: {} });
    const { data: events } = await waiting;
    process.stdout.write(`embedded: POST -> long poll answered in ${Date.now() - sentAt} ms\n`);
    expect(events.map((e) => e.id)).toEqual([sent.id]);
    const noLease = await fetch(`${url}/events/${sent.id}/nack`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: "{}" });
    expect(noLease.status).toBe(400);
    await client.nack(sent.id, events[0]!.lease_id!, 0);
    // The nack makes it deliverable at once; acknowledged through the lease-bound batch ack.
    const again = await client.lease({ waitSeconds: 5, type: "embedded.test" });
    expect(again.data.map((e) => [e.id, e.delivery_count])).toEqual([[sent.id, 2]]);
    expect(await client.ackLeases([{ id: sent.id, lease_id: again.data[0]!.lease_id! }])).toEqual([{ id: sent.id, lease_id: again.data[0]!.lease_id, status: "acknowledged" }]);
  });

  test("a Consumer handles every event once", async () => {
    const client = new TriggersClient({ baseUrl: url, apiKey: key });
    const sent = await client.sendBatch(Array.from({ length: 50 }, (_, i) => ({ type: "embedded.batch", payload: { i } })));
    const seen = new Map<string, number>();
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const consumer = new Consumer({
      baseUrl: url,
      apiKey: key,
      waitSeconds: 2,
      filter: { type: "embedded.batch" },
      handleMessage: async (e) => {
        seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
        if (sent.every((s) => seen.has(s.id))) done();
      },
    });
    consumer.start();
    await all;
    await consumer.stop();
    expect(seen.size).toBe(50);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });

  test("SIGTERM answers a waiting long poll at once with an empty page", async () => {
    const client = new TriggersClient({ baseUrl: url, apiKey: key, maxRetries: 0 });
    const waiting = client.lease({ waitSeconds: 20, type: "nothing.here" });
    await new Promise((r) => setTimeout(r, 500));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect((await waiting).data).toEqual([]);
    expect(await exited).toBe(0);
  });
});
