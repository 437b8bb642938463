/** Deadline of the `healthcheck` probe, ms. */
const HEALTHCHECK_TIMEOUT_MS = 2000;

/**
 * The container health check of every role: GET http://127.0.0.1:$METRICS_PORT/healthz with a 2 s
 * deadline; exit 0 on a 2xx answer, 1 on anything else (no answer, refused, timeout, bad port).
 */
export async function cmdHealthcheck(): Promise<never> {
  const raw = process.env.METRICS_PORT ?? "9464";
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    process.stderr.write(`healthcheck: METRICS_PORT must be a port number (1-65535)\n`);
    process.exit(1);
  }
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) });
    await res.body?.cancel();
    if (res.ok) process.exit(0);
    process.stderr.write(`healthcheck: /healthz answered ${res.status}\n`);
  } catch (err) {
    process.stderr.write(`healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(1);
}
