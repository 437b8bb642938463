import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Container } from "../container";
import { createApp } from "./app";
import { answerClientErrors } from "./client-error";
import type { ApiDeps } from "./deps";

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
      void handle(req, res);
    },
  );
  // Requests refused before the app sees them answer the JSON error too (src/api/client-error.ts).
  answerClientErrors(server);
  server.maxConnections = http.maxConnections;
  server.keepAliveTimeout = http.keepAliveTimeoutMs; // default longer than typical load balancer idle timeouts
  const connections = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
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
      const sweep = setInterval(() => server.closeIdleConnections(), 100).unref();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      try {
        await closed;
      } finally {
        clearInterval(sweep);
      }
      await wakeups;
      await deps.batcher.drain();
      // The receipts of the last 202s, before the container closes Redis.
      await deps.receipts.settled();
    },
  };
}
