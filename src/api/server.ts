import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Container } from "../container";
import { createApp } from "./app";
import { answerClientErrors } from "./client-error";
import type { ApiDeps } from "./deps";
import { errorBody } from "../errors";

/**
 * Connections past HTTP_MAX_CONNECTIONS that are still accepted, for health probes only: the load
 * balancer's GET /healthz is answered even when clients hold every regular connection. Requests for
 * anything else on them answer 503 at once and close.
 */
export const HEALTH_RESERVE_CONNECTIONS = 16;
/** A reserve connection that sends no request within this is closed, ms. */
const RESERVE_IDLE_MS = 1000;
/** Paths served on reserve connections. */
const HEALTH_PATHS = new Set(["/healthz"]);

export interface RunningApi {
  readonly server: Server;
  readonly port: number;
  readonly deps: ApiDeps;
  /** Stops accepting connections, answers long polls at once, lets in-flight requests finish (their SQS sends included), then resolves. */
  close(): Promise<void>;
}

/** Starts the HTTP API on config.host:config.port (0 = any free port), on the dependencies the API role built (src/roles/api.ts). */
export async function startApi(c: Container, deps: ApiDeps): Promise<RunningApi> {
  await deps.wakeups.start();
  const app = createApp(deps);
  const http = c.config.http;
  // Graceful close: server.close() alone leaves a keep-alive connection that was busy when it was
  // called open until keepAliveTimeout. So once closing, every response asks its client to close
  // (the ones in flight too, when their headers are not sent yet) and idle connections are closed
  // until none is left. In-flight responses are found through their connections
  // (`socket._httpMessage`, the response a connection is writing), so a request costs no listener
  // of its own.
  let closing = false;
  const handle = app.callback();
  // Slow clients: headers and the whole request (its body included) must arrive in time, or Node
  // answers 408 and closes; the check runs every half second. Connections past the cap are closed
  // on accept.
  const server = createServer(
    {
      requestTimeout: http.requestTimeoutMs,
      headersTimeout: Math.min(http.headersTimeoutMs, http.requestTimeoutMs),
      connectionsCheckingInterval: 500,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      if (closing) res.setHeader("Connection", "close");
      if (reserve.has(req.socket)) {
        res.setHeader("Connection", "close");
        const path = (req.url ?? "").split("?", 1)[0]!;
        if (!(HEALTH_PATHS.has(path) && (req.method === "GET" || req.method === "HEAD"))) {
          refuseOverCapacity(res);
          return;
        }
      }
      void handle(req, res);
    },
  );
  // Requests refused before the app sees them answer the JSON error too (src/api/client-error.ts).
  answerClientErrors(server);
  // Past the cap plus the reserve, Node closes connections on accept.
  server.maxConnections = http.maxConnections + HEALTH_RESERVE_CONNECTIONS;
  const reserve = new WeakSet<Socket>();
  server.keepAliveTimeout = http.keepAliveTimeoutMs; // default longer than typical load balancer idle timeouts
  const connections = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    if (connections.size >= http.maxConnections) {
      reserve.add(socket);
      socket.setTimeout(RESERVE_IDLE_MS, () => socket.destroy());
    }
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(c.config.port, c.config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : c.config.port;
  return {
    server,
    port,
    deps,
    async close() {
      closing = true;
      // Long polls answer now (an empty page), so they do not hold the close up.
      const wakeups = deps.wakeups.close();
      for (const socket of connections) {
        const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res && !res.headersSent) res.setHeader("Connection", "close");
      }
      // A connection whose response was already past its headers, or with pipelined requests
      // queued behind it, goes idle later: closed within 100 ms of it.
      // A connection that has not sent a byte (one a client or load balancer opened ahead of use)
      // is not "idle" to Node and would hold the close up until the client gives up on it: it
      // carries no request, so it is closed too.
      const closeIdle = () => {
        server.closeIdleConnections();
        for (const socket of connections) if (socket.bytesRead === 0 && !(socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage) socket.destroy();
      };
      const sweep = setInterval(closeIdle, 100).unref();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      closeIdle();
      try {
        await closed;
      } finally {
        clearInterval(sweep);
      }
      await wakeups;
    },
  };
}

/** The answer to a request on a reserve connection that is not a health probe. */
function refuseOverCapacity(res: ServerResponse): void {
  const body = JSON.stringify(errorBody("service_unavailable", "the server is at its connection limit; retry shortly", [{ message: "connection limit reached", dependency: "http" }]));
  res.writeHead(503, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(body), "Retry-After": "1", "Cache-Control": "no-store", "X-Request-Id": randomUUID() });
  res.end(body);
}
