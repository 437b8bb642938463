import getRawBody from "raw-body";
import sjson from "secure-json-parse";
import type { Context } from "koa";
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../../errors";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Reads and parses a JSON request body. Refuses non-JSON types (415) and compressed bodies, stops
 * reading past `limit` bytes (413, without buffering the rest), rejects malformed JSON (400) and
 * `__proto__`/`constructor.prototype` keys (400), so nothing downstream can be polluted.
 * The result is `unknown` until a schema validates it.
 */
export async function readJsonBody(ctx: Context, limit: number, opts: { optional?: boolean } = {}): Promise<unknown> {
  const length = ctx.request.length;
  const hasBody = (length !== undefined && length > 0) || ctx.get("Transfer-Encoding") !== "";
  if (!hasBody) {
    if (opts.optional) return undefined;
    throw new BadRequestError("invalid_json", "a JSON request body is required");
  }
  if (!ctx.is("application/json", "application/*+json")) throw new UnsupportedMediaTypeError();
  const charset = ctx.request.charset;
  if (charset && charset.toLowerCase() !== "utf-8" && charset.toLowerCase() !== "utf8") throw new UnsupportedMediaTypeError();
  const encoding = ctx.get("Content-Encoding");
  if (encoding !== "" && encoding.toLowerCase() !== "identity") throw new UnsupportedMediaTypeError();
  if (length !== undefined && length > limit) throw new PayloadTooLargeError(limit);
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit, length });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === "entity.too.large") throw new PayloadTooLargeError(limit);
    throw new BadRequestError("invalid_body", "the request body could not be read");
  }
  let text: string;
  try {
    // Strict: invalid UTF-8 is refused rather than silently turned into U+FFFD. A leading BOM is ignored (RFC 8259 §8.1).
    text = utf8.decode(bytes);
  } catch {
    throw new BadRequestError("invalid_encoding", "the request body is not valid UTF-8");
  }
  try {
    return sjson.parse(text, undefined, { protoAction: "error", constructorAction: "error" });
  } catch (err) {
    // secure-json-parse reports both cases as SyntaxError; its message tells them apart.
    if (err instanceof Error && /forbidden prototype property/i.test(err.message)) {
      throw new BadRequestError("forbidden_key", "the request body contains a forbidden key (__proto__ or constructor.prototype)");
    }
    throw new BadRequestError("invalid_json", "the request body is not valid JSON");
  }
}
