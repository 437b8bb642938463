import pino, { type Logger } from "pino";

export type { Logger };

/**
 * JSON logger, on stdout by default through an asynchronous pino destination: lines are written
 * without blocking the request path, and the lines logged while a write is in flight leave
 * together in the next one (no buffering threshold, so a quiet process still writes each line at
 * once). pino flushes it on exit; a hard crash can lose only the lines of the write in flight.
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
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 }),
  );
}
