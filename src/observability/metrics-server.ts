import { createServer, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { errorBody } from "../errors";
import type { Logger } from "./logger";
import { NOT_READY_RETRY_AFTER_SECONDS, readinessBody, runChecks, type ReadinessChecks } from "./readiness";

/** Options of the operational HTTP server of a role without the API (worker, scheduler). */
export interface MetricsServerOptions {
  readonly registry: Registry;
  /** The role's dependencies, for /readyz. */
  readonly checks: ReadinessChecks;
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly logger: Logger;
}

/** A started metrics server. */
export interface RunningMetricsServer {
  readonly server: Server;
  readonly port: number;
  /** Stops listening; scrapes in flight get 1 s to finish, then their connections are closed. */
  close(): Promise<void>;
}

/**
 * Serves GET /metrics (Prometheus text), /healthz (liveness) and /readyz (the role's
 * dependencies, 503 naming the failing ones) for a worker or scheduler process.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<RunningMetricsServer> {
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.statusCode = status;
    res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      json(res, 405, errorBody("method_not_allowed", "only GET is supported"));
      return;
    }
    const answer = async () => {
      if (path === "/metrics") {
        const text = await opts.registry.metrics();
        res.setHeader("Content-Type", opts.registry.contentType);
        res.end(text);
      } else if (path === "/healthz") {
        json(res, 200, { status: "ok" });
      } else if (path === "/readyz") {
        const result = await runChecks(opts.checks);
        if (!result.ok) res.setHeader("Retry-After", String(NOT_READY_RETRY_AFTER_SECONDS));
        json(res, result.ok ? 200 : 503, readinessBody(result));
      } else {
        json(res, 404, errorBody("not_found", "no such route"));
      }
    };
    answer().catch((err: unknown) => {
      opts.logger.error({ err }, "metrics server request failed");
      if (!res.headersSent) json(res, 500, errorBody("internal_error", "internal error"));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  return {
    server,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 1000);
      await closed;
      clearTimeout(force);
    },
  };
}
