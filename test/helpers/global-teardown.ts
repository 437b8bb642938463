import { existsSync, readFileSync, rmSync } from "node:fs";
import { EMULATOR_STATE_FILE } from "./env";

/** Stops the shared SQS emulator started by global setup (by pid). */
export default async function globalTeardown(): Promise<void> {
  if (!existsSync(EMULATOR_STATE_FILE)) return;
  const { pid } = JSON.parse(readFileSync(EMULATOR_STATE_FILE, "utf8")) as { pid: number };
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // already gone
  }
  rmSync(EMULATOR_STATE_FILE, { force: true });
}
