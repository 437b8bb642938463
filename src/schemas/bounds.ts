import { BadRequestError, SchemaLimitError } from "../errors";
import { linearSyntaxError } from "./linear-regexp";

/** Text Postgres jsonb cannot store: a NUL character or an unpaired UTF-16 surrogate. */
const unstorable = (s: string): boolean => s.includes("\u0000") || !s.isWellFormed();
const unstorableError = () => new BadRequestError("invalid_schema", "the schema contains a NUL character or an unpaired surrogate, which cannot be stored");

/** The bounds a registered schema must stay within (Config["schemas"]; docs/quotas.md). */
export interface SchemaBounds {
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxNodes: number;
  readonly maxCompileMs: number;
}

/** Longest regular expression (pattern, patternProperties key) a schema may hold, characters. */
export const MAX_PATTERN_LENGTH = 512;

/** Most items an array checked with `uniqueItems` may be declared to hold (`maxItems`): the check compares items pairwise. */
export const MAX_UNIQUE_ITEMS = 1000;

/** The one dialect the registry compiles. */
export const DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema";

/**
 * Checks a schema's size and shape before anything compiles it; throws SchemaLimitError (400
 * schema_limit_exceeded) naming the first bound it passes:
 * - `schema_bytes`: its JSON is larger than maxBytes;
 * - `schema_depth`: it nests deeper than maxDepth (iterative walk: no stack to overflow);
 * - `schema_nodes`: it holds more than maxNodes objects and arrays;
 * - `remote_ref`: a `$ref`/`$dynamicRef` that is not a fragment of the schema itself (`#…`), so
 *   nothing is ever fetched and no other schema is consulted;
 * - `pattern_length`, `pattern_cost`: a regular expression longer than MAX_PATTERN_LENGTH, or one
 *   the linear-time engine cannot run (a backreference, a lookaround; see linear-regexp.ts);
 * - `unique_items`: `uniqueItems: true` without a `maxItems` of at most MAX_UNIQUE_ITEMS beside it
 *   (comparing the items of an array is quadratic in its length).
 * Returns the JSON text's byte length.
 */
export function checkSchemaBounds(schema: unknown, bounds: SchemaBounds): number {
  const text = JSON.stringify(schema);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > bounds.maxBytes) throw new SchemaLimitError("schema_bytes", `the schema takes ${bytes} bytes; the limit is ${bounds.maxBytes} (SCHEMA_MAX_BYTES)`, bounds.maxBytes);
  let nodes = 0;
  const stack: Array<{ v: unknown; depth: number; key: string | null; parentKey: string | null }> = [{ v: schema, depth: 1, key: null, parentKey: null }];
  while (stack.length > 0) {
    const { v, depth, key, parentKey } = stack.pop()!;
    if (typeof v === "string") {
      if (unstorable(v)) throw unstorableError();
      if ((key === "$ref" || key === "$dynamicRef") && parentKey !== "properties" && !v.startsWith("#")) {
        throw new SchemaLimitError("remote_ref", `"${key}": ${JSON.stringify(v.slice(0, 100))} is not a reference inside the schema (only "#…" references are resolved; nothing is fetched)`);
      }
      if (key === "pattern" && parentKey !== "properties") checkPattern(v);
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    if (depth > bounds.maxDepth) throw new SchemaLimitError("schema_depth", `the schema nests deeper than ${bounds.maxDepth} levels (SCHEMA_MAX_DEPTH)`, bounds.maxDepth);
    if (++nodes > bounds.maxNodes) throw new SchemaLimitError("schema_nodes", `the schema holds more than ${bounds.maxNodes} objects and arrays (SCHEMA_MAX_NODES)`, bounds.maxNodes);
    if (Array.isArray(v)) {
      for (const child of v) stack.push({ v: child, depth: depth + 1, key: null, parentKey: key });
      continue;
    }
    const o = v as Record<string, unknown>;
    if (o.uniqueItems === true && key !== "properties" && !(typeof o.maxItems === "number" && o.maxItems <= MAX_UNIQUE_ITEMS)) {
      throw new SchemaLimitError("unique_items", `"uniqueItems": true needs "maxItems" of at most ${MAX_UNIQUE_ITEMS} beside it (the check compares items pairwise)`, MAX_UNIQUE_ITEMS);
    }
    for (const [k, child] of Object.entries(v)) {
      if (unstorable(k)) throw unstorableError();
      if (key === "patternProperties") checkPattern(k);
      stack.push({ v: child, depth: depth + 1, key: k, parentKey: key });
    }
  }
  return bytes;
}

function checkPattern(pattern: string): void {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new SchemaLimitError("pattern_length", `a pattern is ${pattern.length} characters long; the limit is ${MAX_PATTERN_LENGTH}`, MAX_PATTERN_LENGTH);
  }
  const unsupported = linearSyntaxError(pattern);
  if (unsupported !== null) {
    throw new SchemaLimitError("pattern_cost", `the pattern ${JSON.stringify(pattern.slice(0, 100))} is outside what the linear-time engine runs (RE2: no backreferences or lookarounds): ${unsupported}`);
  }
}
