import pino, { type Logger } from "pino";
import SonicBoom from "sonic-boom";
import { isoString } from "../domain/clock";
import { Coalescer } from "../coalescer";

export type { Logger };

/** How long log lines wait at most to be written together, ms. */
export const LOG_WRITE_INTERVAL_MS = 10;

/**
 * Collects log lines and hands them to sonic-boom as one string, at most LOG_WRITE_INTERVAL_MS
 * after the first of them: a write costs about the same whatever its length, so one write carries
 * many lines (the measurements: docs/performance.md, "Ingest cost per stage").
 */
export class BatchedDestination {
  /** Unreferenced: pending lines never keep a process alive, and exit flushes them (flushSync). */
  private readonly lines = new Coalescer<string>({
    lingerMs: LOG_WRITE_INTERVAL_MS,
    eager: false,
    unref: true,
    flush: (lines) => {
      this.out.write(lines.length === 1 ? lines[0]! : lines.join(""));
    },
  });

  constructor(private readonly out: SonicBoom) {}

  write(line: string): boolean {
    this.lines.add(line);
    return true;
  }

  /**
   * Writes everything pending before returning (used on exit): sonic-boom is switched to
   * synchronous writes first, so the last lines are not handed to the thread pool of a process
   * that is about to end. A write already in flight at that moment is the one thing left to it.
   */
  flushSync(): void {
    (this.out as unknown as { sync: boolean }).sync = true;
    try {
      this.lines.flushNow();
      this.out.flushSync();
    } catch {
      // not open yet or already closed: nothing more can be written
    }
  }
}

/** stdout through sonic-boom (asynchronous), batched (BatchedDestination), flushed synchronously on exit. */
function stdoutDestination(): BatchedDestination {
  const dest = new BatchedDestination(new SonicBoom({ fd: 1, sync: false, minLength: 0 }));
  process.once("exit", () => dest.flushSync());
  return dest;
}

/** pino's `,"time":"<ISO 8601>"`, as pino.stdTimeFunctions.isoTime writes it (see isoString). */
export function isoTime(): string {
  return `,"time":"${isoString(Date.now())}"`;
}

/**
 * JSON logger, on stdout by default through an asynchronous destination: lines are written
 * without blocking the request path, the lines of up to LOG_WRITE_INTERVAL_MS leave in one write
 * (so a quiet process writes a line at most 10 ms after it was logged), and the lines logged while
 * a write is in flight leave together in the next one. Pending lines are written synchronously on
 * exit; a process that ends without its exit handlers can lose only the last 10 ms of lines and the
 * write in flight.
 * Redaction is a second line of defence: request logging never passes headers or bodies in the
 * first place, but anything shaped like a credential is censored if it ever is.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const out = destination ?? stdoutDestination();
  const logger = pino(
    {
      level,
      base: BASE,
      redact: {
        paths: ["authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "secret", "*.secret", "apiKey", "*.apiKey", "payload", "*.payload"],
        censor: "[redacted]",
      },
      timestamp: isoTime,
    },
    out,
  );
  destinations.set(logger, out);
  return logger;
}

const BASE = { service: "triggers" };
/** BASE as pino writes it after the time: `,"service":"triggers"`. */
const BASE_JSON = `,${JSON.stringify(BASE).slice(1, -1)}`;
const INFO = pino.levels.values.info!;
/** The destination of each logger createLogger made (see requestLogWriter). */
const destinations = new WeakMap<Logger, pino.DestinationStream>();

/** The fields of the API's one log line per request (see requestContext). */
export interface RequestLogLine {
  readonly requestId: string;
  readonly method: string;
  readonly route: string;
  readonly path: string;
  readonly status: number;
  readonly ms: number;
  readonly tenant?: string | undefined;
  readonly keyId?: string | undefined;
}

/**
 * Writes the API's per-request line at info level: the same JSON line pino writes for
 * `logger.info(fields, "request")` (level, time, base, the fields, msg; absent fields left out),
 * built as one string from these fixed, credential-free fields instead of through pino's generic
 * serializer and redaction, and written to the logger's destination. Under ingest load the
 * line through pino took about a tenth of the API's CPU per request. A logger this module did not
 * create logs the line through pino.
 */
export function requestLogWriter(logger: Logger): (line: RequestLogLine) => void {
  const destination = destinations.get(logger);
  if (!destination) {
    const child = logger.child({}, { redact: [] });
    return (line) => child.info(line, "request");
  }
  const text = JSON.stringify;
  return (l) => {
    if (logger.levelVal > INFO) return;
    const who = `${l.tenant === undefined ? "" : `,"tenant":${text(l.tenant)}`}${l.keyId === undefined ? "" : `,"keyId":${text(l.keyId)}`}`;
    destination.write(
      `{"level":${INFO}${isoTime()}${BASE_JSON},"requestId":${text(l.requestId)},"method":${text(l.method)},"route":${text(l.route)},"path":${text(l.path)},"status":${l.status},"ms":${l.ms}${who},"msg":"request"}\n`,
    );
  };
}
