import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { TriggersClient, TriggersError } from "../../src/client/index";

/**
 * The client's retry rules against a scripted HTTP server: answers the service gives only under
 * faults (503 enqueue_outcome_unknown, a 503 that never ends, gateway errors), each answered in the
 * order the test lists. The real-service behaviour is in test/integration/client-*.test.ts.
 */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly key: string | undefined;
  readonly body: string;
  readonly at: number;
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

async function scripted(answers: (seen: Seen, n: number) => Answer): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const s: Seen = { method: req.method!, url: req.url!, key: req.headers["idempotency-key"] as string | undefined, body, at: Date.now() };
      seen.push(s);
      const a = answers(s, seen.length);
      res.writeHead(a.status, { "Content-Type": "application/json", ...a.headers });
      res.end(a.body === undefined ? "" : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

const unknownOutcome: Answer = { status: 503, headers: { "Retry-After": "0" }, body: { error: { code: "enqueue_outcome_unknown", message: "the queue may or may not have the event" } } };
const accepted = (id: string): Answer => ({ status: 202, body: { id, status: "accepted", received_at: "2026-12-01T00:00:00.000Z" } });

describe("client retries", () => {
  test("503 enqueue_outcome_unknown is retried with the same generated Idempotency-Key", async () => {
    const srv = await scripted((_s, n) => (n < 3 ? unknownOutcome : accepted("evt_1")));
    try {
      const client = new TriggersClient({ baseUrl: srv.url, apiKey: "trg_x" });
      const a = await client.send({ type: "t", payload: {} });
      expect(a).toMatchObject({ id: "evt_1", status: "accepted" });
      expect(srv.seen).toHaveLength(3);
      const keys = new Set(srv.seen.map((s) => s.key));
      expect(keys.size).toBe(1);
      expect([...keys][0]).toBe(a.idempotency_key);
      expect(a.idempotency_key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      await srv.close();
    }
  });

  test("two keyless sends get different keys; a batch's items keep theirs across a retried 503", async () => {
    const srv = await scripted((s, n) =>
      s.url === "/events/batch"
        ? n === 3
          ? unknownOutcome
          : { status: 202, body: { data: (JSON.parse(s.body) as { events: unknown[] }).events.map((_, i) => ({ id: `evt_${i}`, status: "accepted", received_at: "2026-12-01T00:00:00.000Z", replayed: false })) } }
        : accepted(`evt_${n}`),
    );
    try {
      const client = new TriggersClient({ baseUrl: srv.url, apiKey: "trg_x" });
      await client.send({ type: "t", payload: {} });
      await client.send({ type: "t", payload: {} });
      expect(srv.seen[0]!.key).not.toBe(srv.seen[1]!.key);
      const out = await client.sendBatch([{ type: "a", payload: {} }, { type: "b", payload: {}, idempotency_key: "mine" }]);
      const bodies = srv.seen.slice(2).map((s) => (JSON.parse(s.body) as { events: Array<{ idempotency_key: string }> }).events.map((e) => e.idempotency_key));
      expect(bodies).toHaveLength(2);
      expect(bodies[1]).toEqual(bodies[0]);
      expect(bodies[0]![1]).toBe("mine");
      expect(out.map((a) => a.idempotency_key)).toEqual(bodies[0]);
    } finally {
      await srv.close();
    }
  });

  test("Retry-After is honoured; attempts are bounded by maxRetries", async () => {
    const srv = await scripted(() => ({ status: 503, headers: { "Retry-After": "1" }, body: { error: { code: "service_unavailable", message: "down" } } }));
    try {
      const client = new TriggersClient({ baseUrl: srv.url, apiKey: "trg_x", maxRetries: 2 });
      const err = (await client.send({ type: "t", payload: {} }).catch((e: unknown) => e)) as TriggersError;
      expect(err).toBeInstanceOf(TriggersError);
      expect([err.status, err.code, err.retryable]).toEqual([503, "service_unavailable", true]);
      expect(srv.seen).toHaveLength(3);
      // Each retry waited the second Retry-After asked for.
      for (let i = 1; i < srv.seen.length; i++) expect(srv.seen[i]!.at - srv.seen[i - 1]!.at).toBeGreaterThanOrEqual(950);
    } finally {
      await srv.close();
    }
  });

  test("the overall deadline ends a call that would otherwise retry on: no wait past totalTimeoutMs", async () => {
    const srv = await scripted(() => ({ status: 503, headers: { "Retry-After": "1" }, body: { error: { code: "enqueue_outcome_unknown", message: "?" } } }));
    try {
      const client = new TriggersClient({ baseUrl: srv.url, apiKey: "trg_x", maxRetries: 100, totalTimeoutMs: 2_500 });
      const started = Date.now();
      const err = (await client.send({ type: "t", payload: {} }).catch((e: unknown) => e)) as TriggersError;
      const took = Date.now() - started;
      expect(err.code).toBe("enqueue_outcome_unknown");
      expect(took).toBeLessThan(2_500);
      // Attempts at 0, 1 and 2 s; a fourth at 3 s would pass the deadline, so the error is thrown at once.
      expect(srv.seen).toHaveLength(3);
    } finally {
      await srv.close();
    }
  });

  test("gateway errors (502, 504) are retried; a 400 or 409 is not", async () => {
    const srv = await scripted((_s, n) =>
      n === 1 ? { status: 502 } : n === 2 ? { status: 504 } : n === 3 ? accepted("evt_ok") : { status: 409, body: { error: { code: "idempotency_key_reused", message: "other body" } } },
    );
    try {
      const client = new TriggersClient({ baseUrl: srv.url, apiKey: "trg_x", retryBaseMs: 1 });
      expect((await client.send({ type: "t", payload: {} })).id).toBe("evt_ok");
      const err = (await client.send({ type: "t", payload: {} }, { idempotencyKey: "k" }).catch((e: unknown) => e)) as TriggersError;
      expect([err.status, err.code, err.retryable]).toEqual([409, "idempotency_key_reused", false]);
      expect(srv.seen).toHaveLength(4);
    } finally {
      await srv.close();
    }
  });
});
