import { ConfigError, loadConfig } from "../config";
import { runRole } from "../roles/run";
import { cmdKeys } from "./keys";
import { cmdMigrate } from "./migrate";
import { cmdSqsEmulator } from "./sqs-emulator";
import { UsageError } from "./usage-error";

const USAGE = `usage: triggers <command>

  start                  API + ingest worker + scheduler in one process (embedded defaults)
  api                    the HTTP API
  worker                 the ingest worker (SQS -> Postgres)
  scheduler              scheduled maintenance (event expiry) on BullMQ, or a timer without REDIS_URL
  migrate                apply database migrations (creating the schema named in DATABASE_URL ?schema=)
  healthcheck            exit 0 when this container's role answers /healthz on METRICS_PORT, else 1
  keys create --tenant T --scopes s1,s2 [--name N] [--rate-limit N] [--json]
  keys list [--tenant T] [--json]
  keys revoke <key-id>
  sqs-emulator [--port N] [--queue NAME] [--max-receive-count N]
                         an SQS emulator on 127.0.0.1 with the queue and its DLQ

Configuration comes from the environment; see README.md.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === "help" || command === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadConfig();
  switch (command) {
    case "start":
    case "api":
    case "worker":
    case "scheduler":
      return runRole(config, command);
    case "migrate":
      return cmdMigrate(config);
    case "keys":
      return cmdKeys(config, args);
    case "sqs-emulator":
      return cmdSqsEmulator(config, args);
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

/** Runs every command but `healthcheck` (main.ts dispatches that one): a bad configuration or usage exits 2 with one line, a failure 1. */
export function runCli(argv: string[]): void {
  main(argv).catch((err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`triggers: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`triggers: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
