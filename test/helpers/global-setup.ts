import { existsSync, writeFileSync } from "node:fs";
import { Client } from "pg";
import { Redis } from "ioredis";
import { spawnEmulator } from "../../src/dev/local-services";
import { CLI, EMULATOR_STATE_FILE, TEST_ADMIN_DATABASE_URL, TEST_DATABASE_URL, TEST_REDIS_URL } from "./env";

/**
 * Once per test run: makes sure the test database exists, Redis answers, and starts one SQS
 * emulator process (fauxqs on 127.0.0.1) that every test file shares, each with its own queues.
 */
export default async function globalSetup(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it for you)`);
  const dbName = new URL(TEST_DATABASE_URL).pathname.slice(1);
  const admin = new Client({ connectionString: TEST_ADMIN_DATABASE_URL });
  await admin.connect().catch((err: Error) => {
    throw new Error(`Postgres is not reachable at ${TEST_ADMIN_DATABASE_URL}: ${err.message}`);
  });
  const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [dbName]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${dbName}"`);
  await admin.end();

  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect().catch((err: Error) => {
    throw new Error(`Redis is not reachable at ${TEST_REDIS_URL}: ${err.message}`);
  });
  await redis.quit();

  const { endpoint, process: child } = await spawnEmulator(CLI, "triggers-shared");
  writeFileSync(EMULATOR_STATE_FILE, JSON.stringify({ endpoint, pid: child.pid }));
  process.env.TEST_SQS_ENDPOINT = endpoint;
}
