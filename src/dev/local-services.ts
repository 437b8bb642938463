import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "pg";
import { createSchemaStatement, dropSchemaStatement } from "../store/migrate/schemas";

/*
 * Local stand-ins for a deployment's surroundings, shared by the tests and the benches (which
 * import them from here, never from each other): free ports, throwaway Postgres schemas, and
 * processes of the built CLI that announce where they listen. Nothing in the service uses them.
 */

/** Creates `schema` in the database at `databaseUrl`; returns the URL that selects it and a drop function. */
export async function createSchema(databaseUrl: string, schema: string): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const run = async (sql: string) => {
    const c = new Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(createSchemaStatement(schema));
  return {
    url: `${databaseUrl}?schema=${schema}`,
    schema,
    drop: () => run(dropSchemaStatement(schema)),
  };
}

/**
 * Spawns `node <args>` and resolves with the first line it prints on stdout, parsed as JSON
 * (how the emulator and the bare Koa baseline announce where they listen).
 */
export async function spawnAnnouncing<T>(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; announced: T }> {
  const child = spawn(process.execPath, [...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...env },
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (l) => {
      rl.close();
      resolve(l);
    });
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited early (${code})`)));
  });
  child.stdout!.resume();
  return { child, announced: JSON.parse(line) as T };
}

/**
 * Starts the SQS emulator as its own process on 127.0.0.1 (as in production, the queue is not in
 * the worker's process). `cli` is the built CLI; the default is its place in the build (dist/src/cli/main.js).
 */
export async function spawnEmulator(
  cli: string = join(__dirname, "..", "cli", "main.js"),
  queue = "bench-unused",
): Promise<{ endpoint: string; process: ChildProcess; stop(): void }> {
  const { child, announced } = await spawnAnnouncing<{ endpoint: string }>([cli, "sqs-emulator", "--port", "0", "--queue", queue]);
  return { endpoint: announced.endpoint, process: child, stop: () => child.kill("SIGTERM") };
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once GET url answers 2xx, polling every 50 ms for up to `ms`. */
export async function waitForHttp(url: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
