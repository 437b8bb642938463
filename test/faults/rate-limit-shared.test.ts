import { Redis } from "ioredis";
import { TEST_REDIS_URL } from "../helpers/env";
import { FaultEnv, post, type RoleProcess } from "./fault-env";

/**
 * The per-key limit as clients see it: several concurrent clients on two API processes that share
 * Redis. Within one window the key is admitted at least 97 % of its limit and never more.
 */
const LIMIT = 600;
const CLIENTS = 6;

let env: FaultEnv;
let apis: RoleProcess[];

beforeAll(async () => {
  env = await new FaultEnv({ env: { RATE_LIMIT_PER_MINUTE: String(LIMIT) } }).start();
  apis = await Promise.all([env.spawn("api"), env.spawn("api")]);
}, 60_000);

afterAll(async () => {
  await env?.close();
});

const event = (seq: number) => ({ type: "limit.test", payload: { seq } });

/** Six clients, three per process, each sending one request after another until it has seen `refusals` 429s. */
async function burst(refusals: number): Promise<{ admitted: number; limited: number; other: number[]; ms: number }> {
  let admitted = 0;
  let limited = 0;
  const other: number[] = [];
  let seq = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const api = apis[c % apis.length]!;
      let mine = 0;
      while (mine < refusals) {
        const res = await post(`${api.url}/events`, env.key, event(seq++));
        if (res.status === 202) admitted++;
        else if (res.status === 429) {
          limited++;
          mine++;
        } else other.push(res.status);
      }
    }),
  );
  return { admitted, limited, other, ms: Date.now() - started };
}

test("six concurrent clients on two API processes: at least 97 % and at most 100 % of the limit per window", async () => {
  const r = await burst(20);
  process.stdout.write(`${JSON.stringify({ limit: LIMIT, ...r })}\n`);
  // All of it inside the key's first window (it starts at the first request and lasts 60 s).
  expect(r.ms).toBeLessThan(55_000);
  expect(r.other).toEqual([]);
  expect(r.admitted).toBeLessThanOrEqual(LIMIT);
  expect(r.admitted).toBeGreaterThanOrEqual(Math.ceil(LIMIT * 0.97));
  // Redis counted no more than the limit either.
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const keys = await redis.keys(`${env.prefix}:rl:*`);
    expect(keys).toHaveLength(1);
    expect(Number(await redis.get(keys[0]!))).toBeLessThanOrEqual(LIMIT);
  } finally {
    redis.disconnect();
  }
}, 90_000);
