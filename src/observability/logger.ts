import pino, { type Logger } from "pino";
import SonicBoom from "sonic-boom";

export type { Logger };

/**
 * Collects the lines of one event-loop turn and hands them to sonic-boom as one string. sonic-boom
 * measures the byte length of its pending chunk on every write, which flattens (copies) the growing
 * chunk each time while a write is in flight: under ingest load that copied ~7 KB per log line,
 * the largest allocation of a request. One write per turn copies each line once.
 */
export class TurnBatchedDestination {
  private lines: string[] = [];
  private scheduled = false;

  constructor(private readonly out: SonicBoom) {}

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.handOver);
    }
    return true;
  }

  private readonly handOver = (): void => {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const chunk = this.lines.length === 1 ? this.lines[0]! : this.lines.join("");
    this.lines = [];
    this.out.write(chunk);
  };

  /** Writes everything pending before returning (used on exit). */
  flushSync(): void {
    this.handOver();
    try {
      this.out.flushSync();
    } catch {
      // not open yet or already closed: nothing more can be written
    }
  }
}

/** stdout through sonic-boom (asynchronous), batched per turn, flushed synchronously on exit. */
function stdoutDestination(): TurnBatchedDestination {
  const dest = new TurnBatchedDestination(new SonicBoom({ fd: 1, sync: false, minLength: 0 }));
  process.once("exit", () => dest.flushSync());
  return dest;
}

let second = Number.NaN;
let secondPrefix = "";

/**
 * pino's `,"time":"<ISO 8601>"`, as pino.stdTimeFunctions.isoTime writes it, with the date and
 * time up to the second formatted once per second instead of once per line.
 */
export function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  if (now - ms !== second) {
    second = now - ms;
    secondPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${secondPrefix}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z"`;
}

/**
 * JSON logger, on stdout by default through an asynchronous destination: lines are written
 * without blocking the request path, the lines of one event-loop turn leave in one write, and the
 * lines logged while a write is in flight leave together in the next one (no buffering threshold,
 * so a quiet process still writes each line at once). Pending lines are flushed on exit; a hard
 * crash can lose only the lines of the current turn and of the write in flight.
 * Redaction is a second line of defence: request logging never passes headers or bodies in the
 * first place, but anything shaped like a credential is censored if it ever is.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "triggers" },
      redact: {
        paths: ["authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "secret", "*.secret", "apiKey", "*.apiKey", "payload", "*.payload"],
        censor: "[redacted]",
      },
      timestamp: isoTime,
    },
    destination ?? stdoutDestination(),
  );
}
