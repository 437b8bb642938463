/**
 * The LISTEN connection of an API process under a Postgres freeze: after the freeze ends, an event
 * notified to a waiting long poll wakes it (not a safety re-check: those are set far apart here)
 * within 10 s, without a restart, and the replacement of the connection is logged.
 */
import { createHash } from "node:crypto";
import { newEventId } from "../../src/domain/ids";
import { notifyDeliverable } from "../../src/inbox/wakeups";
import { insertEvents } from "../../src/store/events/insert-events";
import type { FreezeMode } from "../helpers/tcp-proxy";
import { FaultEnv, sleep, type RoleProcess } from "./fault-env";
import { putInState } from "../helpers/factories";

jest.setTimeout(120_000);

const DEADLINES = { DB_QUERY_TIMEOUT_MS: "1500", DB_CONNECT_TIMEOUT_MS: "1000", API_KEY_CACHE_MS: "1000" };
const TYPE = "listener.fault";

describe.each(["mid-connection", "accept"] as FreezeMode[])("Postgres frozen (%s) under a long-polling API", (mode) => {
  // Re-checks a minute apart: a waiter answered within its wait was woken by a notification.
  const env = new FaultEnv({ env: { ...DEADLINES, LONG_POLL_RECHECK_MS: "60000" } });
  beforeAll(() => env.start());
  afterAll(() => env.close());

  /** Waiters the API process reports on /metrics. */
  async function waiting(api: RoleProcess): Promise<number> {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const m = /^triggers_long_poll_waiters (\d+)/m.exec(text);
    return m ? Number(m[1]) : -1;
  }

  /** Starts a long poll, stores an event and notifies once it waits; true when the poll was handed the event. */
  async function woken(api: RoleProcess, waitSeconds: number): Promise<boolean> {
    const answer = fetch(`${api.url}/inbox?wait_seconds=${waitSeconds}&type=${TYPE}`, { headers: { Authorization: `Bearer ${env.key}` }, signal: AbortSignal.timeout(waitSeconds * 1000 + 5000) })
      .then(async (r) => (r.status === 200 ? ((await r.json()) as { data: Array<{ id: string }> }) : undefined))
      .catch(() => undefined);
    const deadline = Date.now() + waitSeconds * 1000;
    while ((await waiting(api)) < 1) {
      if (Date.now() > deadline) {
        await answer;
        return false;
      }
      await sleep(20);
    }
    const id = newEventId();
    await insertEvents(env.db.prisma, [
      { v: 1, id, tenant_id: "faults", type: TYPE, source: null, tags: [], payload: {}, occurred_at: null, idempotency_key: null, body_hash: createHash("sha256").update(id).digest("hex"), received_at: new Date().toISOString() },
    ]);
    await notifyDeliverable(env.db.prisma, new Map([["faults", new Set([TYPE])]]));
    const body = await answer;
    // Whatever happened, the event is not left for the next round.
    await putInState(env.db.prisma, "faults", [id], { status: "acknowledged", at: new Date() });
    return body?.data.some((e) => e.id === id) ?? false;
  }

  test("wake-ups work again within 10 s of the freeze ending, without a restart", async () => {
    const api = await env.spawn("api");
    expect(await woken(api, 5)).toBe(true);

    env.proxies.pg.freeze(mode);
    await sleep(8000);
    env.proxies.pg.thaw();
    const thawed = Date.now();

    let recovered = false;
    while (!recovered && Date.now() - thawed < 10_000) recovered = await woken(api, 2);
    expect(recovered).toBe(true);
    // And it stays so.
    expect(await woken(api, 3)).toBe(true);
    expect(api.child.exitCode).toBeNull();
    if (mode === "mid-connection") expect(api.output.join("")).toMatch(/wake-up channel/);
  });
});
