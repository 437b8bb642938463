import { randomUUID } from "node:crypto";
import { STATUS_CODES, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ERROR_CODES, errorBody, type ErrorCode } from "../errors";

/**
 * How long a refused connection may stay half-closed after its answer, ms: the client reads the
 * answer and closes; one that does not is cut then. Closing at once would reset a connection whose
 * client is still sending (an oversized header, a body), and a reset can destroy the answer
 * before the client reads it.
 */
const LINGER_MS = 2000;

/** The answer to one kind of client error: Node's parser error codes and its request timer. */
function classify(err: NodeJS.ErrnoException & { reason?: unknown }): { code: ErrorCode; message: string } {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return { code: "request_header_fields_too_large", message: "the request headers exceed the server's size limit" };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { code: "request_timeout", message: "the request (its headers, or all of it) did not arrive in time" };
    default: {
      // llhttp's reason names the first thing it could not parse ("Invalid method encountered").
      const reason = typeof err.reason === "string" && /^[\x20-\x7e]{1,100}$/.test(err.reason) ? `: ${err.reason}` : "";
      return { code: "bad_request", message: `malformed HTTP request${reason}` };
    }
  }
}

/**
 * Answers what Node's HTTP layer refuses before the app sees a request (a parse error, headers
 * over the size limit, the headers or request timeout: the server's `clientError` event) with the
 * API's JSON error body instead of Node's bare status line, then closes the connection. Nothing is
 * written when the connection is already gone or an answer has started on it.
 */
export function answerClientErrors(server: Server): void {
  const answered = new WeakSet<Socket>();
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // An errored parser reports each further chunk again: one answer per connection.
    if (answered.has(socket)) return;
    answered.add(socket);
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const { code, message } = classify(err);
    const status = ERROR_CODES[code];
    const body = JSON.stringify(errorBody(code, message));
    // The id the request-context middleware gave an in-flight request, so its log line matches.
    const assigned = inFlight?.getHeader("X-Request-Id");
    const requestId = typeof assigned === "string" ? assigned : randomUUID();
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
        "Content-Type: application/json; charset=utf-8\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\n` +
        "Cache-Control: no-store\r\n" +
        "Connection: close\r\n\r\n" +
        body,
    );
    // A half-closed connection ends when the client closes its side, or after LINGER_MS.
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once("end", () => socket.destroy());
    socket.once("close", () => clearTimeout(timer));
  });
}
