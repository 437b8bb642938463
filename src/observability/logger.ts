import pino, { type Logger } from "pino";

export type { Logger };

/**
 * JSON logger. Redaction is a second line of defence: request logging never passes headers or
 * bodies in the first place, but anything shaped like a credential is censored if it ever is.
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
    destination,
  );
}
