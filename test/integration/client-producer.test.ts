import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TriggersClient, TriggersError } from "../../src/client";
import { createApiKey } from "../../src/store/api-keys";
import { TcpProxy } from "../helpers/tcp-proxy";
import { sqsEndpoint, startHarness, type Harness } from "../helpers/harness";

/** The producer side of the client library against the real API (SQS reached through a proxy the test can cut). */
describe("TriggersClient (producer)", () => {
  let h: Harness;
  let sqs: TcpProxy;
  let key: string;

  beforeAll(async () => {
    sqs = await TcpProxy.forUrl(sqsEndpoint()).start();
    h = await startHarness({ env: { SQS_ENDPOINT: sqs.rewrite(sqsEndpoint()) } });
    key = await h.key("producer");
  });
  afterAll(async () => {
    await h.close();
    await sqs.stop();
  });

  test("require('triggers/client') resolves to the built entry point", () => {
    const root = join(__dirname, "..", "..");
    const out = execFileSync(process.execPath, ["-e", "const c = require('triggers/client'); console.log(require.resolve('triggers/client'), typeof c.Consumer, typeof c.TriggersClient)"], { cwd: root, encoding: "utf8" });
    expect(out.trim()).toBe(`${join(root, "dist", "src", "client", "index.js")} function function`);
  });

  test("the README example runs against the API", async () => {
    const root = join(__dirname, "..", "..");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const example = /```js\n(\/\/ TRIGGERS_URL[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const exampleKey = await h.key("readme-example");
    const out = await new Promise<string>((resolve, reject) => {
      // -e runs with the repository as its directory, so require("triggers/client") resolves as for a user.
      execFile(process.execPath, ["-e", example!], { cwd: root, env: { ...process.env, TRIGGERS_URL: h.url, TRIGGERS_KEY: exampleKey }, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(out).toMatch(/got evt_\S+ order\.created \{ id: 42 \}/);
    expect(out).toContain("stopped");
  });

  test("send with an Idempotency-Key: a repeat is replayed with the first id; the event reaches the inbox", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const first = await client.send({ type: "order.created", payload: { id: 1 } }, { idempotencyKey: "order-1" });
    expect(first).toMatchObject({ id: expect.stringMatching(/^evt_/), status: "accepted", replayed: false });
    const again = await client.send({ type: "order.created", payload: { id: 1 } }, { idempotencyKey: "order-1" });
    expect(again).toMatchObject({ id: first.id, replayed: true });
    // The same key with another body is refused, as a typed error.
    const conflict = await client.send({ type: "order.created", payload: { id: 2 } }, { idempotencyKey: "order-1" }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(TriggersError);
    expect(conflict).toMatchObject({ status: 409, code: "idempotency_key_reused" });
    const leased = await h.eventually(async () => {
      const r = await client.lease({ waitSeconds: 5 });
      return r.events.length > 0 ? r.events : undefined;
    });
    expect(leased.map((e) => e.id)).toEqual([first.id]);
    await client.ack(first.id, leased[0]!.lease_id!);
  });

  test("sendBatch accepts all or none; invalid input is a typed 400", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key });
    const accepted = await client.sendBatch([
      { type: "a", payload: {} },
      { type: "b", payload: {}, idempotencyKey: "batch-b" },
    ]);
    expect(accepted.map((a) => a.status)).toEqual(["accepted", "accepted"]);
    const bad = await client.sendBatch([{ type: "", payload: {} }]).catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: "validation_failed" });
  });

  test("a 503 (SQS down) is retried after Retry-After and succeeds once SQS is back", async () => {
    const client = new TriggersClient({ baseUrl: h.url, apiKey: key, maxRetries: 10 });
    sqs.cut();
    const restore = setTimeout(() => sqs.restore(), 1500);
    try {
      const accepted = await client.send({ type: "retry.test", payload: {} }, { idempotencyKey: "retry-1" });
      expect(accepted.status).toBe("accepted");
    } finally {
      clearTimeout(restore);
      sqs.restore();
    }
    // It was refused while SQS was down, so it took at least one 503 before the success.
    expect(Number((await h.c.metrics.enqueueFailures.get()).values[0]?.value ?? 0)).toBeGreaterThan(0);
  });

  test("a 429 carries Retry-After; with retries off the caller gets it as a typed error", async () => {
    const limited = (await createApiKey(h.c.db.prisma, { tenantId: "producer-limited", name: "t", scopes: ["events:write"], rateLimit: 1 })).secret;
    const client = new TriggersClient({ baseUrl: h.url, apiKey: limited, maxRetries: 0 });
    await client.send({ type: "x", payload: {} });
    const err = (await client.send({ type: "x", payload: {} }).catch((e: unknown) => e)) as TriggersError;
    expect(err).toBeInstanceOf(TriggersError);
    expect(err.status).toBe(429);
    expect(err.code).toBe("rate_limited");
    expect(err.retryAfterSeconds).toBeGreaterThan(0);
  });
});
