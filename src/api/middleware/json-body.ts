import { isUtf8 } from "node:buffer";
import getRawBody from "raw-body";
import sjson from "secure-json-parse";
import type { Context } from "koa";
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../../errors";

/**
 * Reads and parses a JSON request body. Refuses non-JSON types (415) and compressed bodies, stops
 * reading past `limit` bytes (413, without buffering the rest), rejects malformed JSON (400) and
 * `__proto__`/`constructor.prototype` keys (400), so nothing downstream can be polluted.
 * The result is `unknown` until a schema validates it.
 */
export async function readJsonBody(ctx: Context, limit: number, opts: { optional?: boolean } = {}): Promise<unknown> {
  return (await readJsonBodyWithBytes(ctx, limit, opts))?.value;
}

/** A parsed JSON body and the bytes it was parsed from. */
export interface JsonBody {
  readonly value: unknown;
  readonly bytes: Buffer;
}

/** readJsonBody, also returning the raw bytes (undefined for an absent optional body). */
export async function readJsonBodyWithBytes(ctx: Context, limit: number, opts: { optional?: boolean } = {}): Promise<JsonBody | undefined> {
  const headers = ctx.req.headers;
  const length = ctx.request.length;
  const hasBody = (length !== undefined && length > 0) || (headers["transfer-encoding"] ?? "") !== "";
  if (!hasBody) {
    if (opts.optional) return undefined;
    throw new BadRequestError("invalid_json", "a JSON request body is required");
  }
  // The common exact type skips the media-type parser.
  if (headers["content-type"] !== "application/json") {
    if (!ctx.is("application/json", "application/*+json")) throw new UnsupportedMediaTypeError();
    const charset = ctx.request.charset;
    if (charset && charset.toLowerCase() !== "utf-8" && charset.toLowerCase() !== "utf8") throw new UnsupportedMediaTypeError();
  }
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && encoding !== "" && encoding.toLowerCase() !== "identity") throw new UnsupportedMediaTypeError();
  if (length !== undefined && length > limit) throw new PayloadTooLargeError(limit);
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit, length });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === "entity.too.large") throw new PayloadTooLargeError(limit);
    throw new BadRequestError("invalid_body", "the request body could not be read");
  }
  // Strict: invalid UTF-8 is refused rather than silently turned into U+FFFD. A leading BOM is ignored (RFC 8259 §8.1).
  if (!isUtf8(bytes)) throw new BadRequestError("invalid_encoding", "the request body is not valid UTF-8");
  let text = (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes).toString("utf8");
  // secure-json-parse also drops a BOM after that one; both parsers below must see the same text.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let parsed: unknown;
  try {
    // secure-json-parse looks for the forbidden keys with two regular expressions over the whole
    // text, escaped spellings included. A text without "__proto__", "constructor" and any \u
    // escape cannot hold either key, so it is parsed as it is.
    parsed = text.includes("\\u") || text.includes("__proto__") || text.includes("constructor") ? sjson.parse(text, undefined, { protoAction: "error", constructorAction: "error" }) : JSON.parse(text);
  } catch (err) {
    // secure-json-parse reports both cases as SyntaxError; its message tells them apart.
    if (err instanceof Error && /forbidden prototype property/i.test(err.message)) {
      throw new BadRequestError("forbidden_key", "the request body contains a forbidden key (__proto__ or constructor.prototype)");
    }
    throw new BadRequestError("invalid_json", "the request body is not valid JSON");
  }
  const inexact = inexactNumber(text);
  if (inexact !== null) {
    throw new BadRequestError(
      "unrepresentable_number",
      `the number ${inexact.length > 64 ? `${inexact.slice(0, 64)}…` : inexact} cannot be kept exactly (JSON numbers are IEEE-754 doubles here: at most 15–17 significant digits, integers within ±(2^53−1), magnitudes up to ~1.8e308); send it as a string`,
    );
  }
  return { value: parsed, bytes };
}

/**
 * Reads a body of any media type as bytes (a binary-mode CloudEvent's data): the same refusals of
 * compressed bodies (415) and of bodies past `limit` (413) as readJsonBody; empty when there is none.
 */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const length = ctx.request.length;
  const hasBody = (length !== undefined && length > 0) || (ctx.req.headers["transfer-encoding"] ?? "") !== "";
  if (!hasBody) return Buffer.alloc(0);
  const encoding = ctx.req.headers["content-encoding"];
  if (encoding !== undefined && encoding !== "" && encoding.toLowerCase() !== "identity") throw new UnsupportedMediaTypeError();
  if (length !== undefined && length > limit) throw new PayloadTooLargeError(limit);
  try {
    return await getRawBody(ctx.req, { limit, length });
  } catch (err) {
    if ((err as { type?: string }).type === "entity.too.large") throw new PayloadTooLargeError(limit);
    throw new BadRequestError("invalid_body", "the request body could not be read");
  }
}

/** Text that may hold a number a double cannot keep: 16+ digits (and points) in a row, or an exponent. */
const MAYBE_INEXACT = /[0-9.]{16}|[0-9][eE]/;
/** Strings (skipped) and number literals of valid JSON. */
const TOKENS = /"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/g;

/**
 * The first number literal of a valid JSON text whose value JSON.parse would change (overflow to
 * Infinity, underflow to 0, rounding of integers past 2^53 or of too many digits), or null. Such a
 * number would be stored as another value, so the request is refused instead. A number with at most
 * 15 significant digits and no exponent always round-trips, so most bodies skip the scan.
 */
export function inexactNumber(text: string): string | null {
  if (!MAYBE_INEXACT.test(text)) return null;
  for (const [token] of text.matchAll(TOKENS)) {
    if (token.charCodeAt(0) === 34 /* " */) continue;
    if (!sameDecimal(token, String(Number(token)))) return token;
  }
  return null;
}

/** True when two decimal literals denote the same value (any zero equals any zero). */
function sameDecimal(a: string, b: string): boolean {
  const x = normalDecimal(a);
  const y = normalDecimal(b);
  return x === y;
}

/** A canonical form of a decimal literal: sign, significant digits and exponent, e.g. "-1.50e3" → "-15e2"; "Infinity" stays itself. */
function normalDecimal(literal: string): string {
  const m = /^(-?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(literal);
  if (!m) return literal;
  const [, sign, int = "", frac = "", exp = "0"] = m;
  let digits = int + frac;
  let exponent = BigInt(exp) - BigInt(frac.length);
  const lead = digits.search(/[^0]/);
  if (lead < 0) return "0";
  digits = digits.slice(lead);
  const trailing = digits.length - digits.replace(/0+$/, "").length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += BigInt(trailing);
  return `${sign}${digits}e${exponent}`;
}
