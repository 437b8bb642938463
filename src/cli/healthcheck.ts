import { get } from "node:http";

/** Deadline of the `healthcheck` probe, ms. */
const HEALTHCHECK_TIMEOUT_MS = 2000;

/**
 * The container health check of every role: GET http://127.0.0.1:$METRICS_PORT/healthz with a 2 s
 * deadline; exit 0 on a 2xx answer, 1 on anything else (no answer, refused, timeout, bad port).
 * It imports node:http only and reads METRICS_PORT itself (not through src/config.ts, whose
 * validation library alone would cost more CPU than the whole probe): main.ts runs it before
 * loading anything else.
 */
export function cmdHealthcheck(): void {
  const raw = process.env.METRICS_PORT ?? "9464";
  const port = Number(raw);
  const fail = (why: string): never => {
    process.stderr.write(`healthcheck: ${why}\n`);
    process.exit(1);
  };
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) fail("METRICS_PORT must be a port number (1-65535)");
  const req = get({ host: "127.0.0.1", port, path: "/healthz", signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) }, (res) => {
    const status = res.statusCode ?? 0;
    res.resume();
    if (status >= 200 && status < 300) process.exit(0);
    fail(`/healthz answered ${status}`);
  });
  req.on("error", (err) => fail(err.message));
}
