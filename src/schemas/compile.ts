import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { linearRegExpEngine } from "./linear-regexp";
import { performance } from "node:perf_hooks";
import { BadRequestError, SchemaLimitError, type ErrorDetail } from "../errors";
import { checkSchemaBounds, DRAFT_2020_12, type SchemaBounds } from "./bounds";

/** Most violations a 422 lists per event (ajv collects them all; the answer is cut there). */
export const MAX_VIOLATIONS = 50;

/**
 * One ajv instance per compiled schema: a schema's `$id` cannot collide with another tenant's, and
 * the instance (with its caches) is freed with the validator when the cache drops it. It carries no
 * meta-schemas (compiling the draft 2020-12 meta-schema costs 100–250 ms per instance): the one
 * shared `metaValidator` checks every schema against the meta-schema first.
 */
function newAjv(): Ajv2020 {
  // strict: false lets real-world schemas carry unknown annotation keywords ("x-…") and unknown
  // formats (ignored); the meta-schema check still refuses what is not a 2020-12 schema.
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true, addUsedSchema: false, meta: false, validateSchema: false, code: { regExp: linearRegExpEngine } });
  addFormats(ajv);
  return ajv;
}

/** The draft 2020-12 meta-schema, compiled once per process on first use (validateSchema only: it never holds a tenant's schema). */
let metaValidator: Ajv2020 | undefined;
function checkAgainstMetaSchema(schema: unknown): void {
  metaValidator ??= new Ajv2020({ allErrors: false, strict: false });
  if (!metaValidator.validateSchema(schema as object)) {
    const e = metaValidator.errors?.[0];
    throw new BadRequestError("invalid_schema", `the schema is not a JSON Schema draft 2020-12: ${e ? `${e.instancePath || "/"} ${e.message ?? "is invalid"}` : "invalid"}`);
  }
}

/**
 * Compiles a schema after its bounds (checkSchemaBounds): 400 invalid_schema when it is not a
 * draft 2020-12 JSON Schema ajv can compile, 400 schema_limit_exceeded (limit `compile_time`) when
 * compiling took longer than maxCompileMs. The bounds on size, depth and node count are what make
 * a compile finite; its time is measured and a slow one refused, so a schema accepted once is one
 * every API process can compile quickly again.
 */
export function compileSchema(schema: unknown, bounds: SchemaBounds): ValidateFunction {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    if (typeof schema !== "boolean") throw new BadRequestError("invalid_schema", "a schema is a JSON object (or true/false)");
  }
  checkSchemaBounds(schema, bounds);
  const declared = (schema as { $schema?: unknown }).$schema;
  if (declared !== undefined && declared !== DRAFT_2020_12 && declared !== `${DRAFT_2020_12}#`) {
    throw new BadRequestError("invalid_schema", `"$schema" must be ${DRAFT_2020_12} (the one dialect the registry compiles)`);
  }
  checkAgainstMetaSchema(schema);
  // Checked above; the meta-less instance would otherwise look the dialect up.
  const compilable = typeof schema === "object" && schema !== null && "$schema" in schema ? { ...(schema as object), $schema: undefined } : schema;
  if (typeof compilable === "object" && compilable !== null) delete (compilable as { $schema?: unknown }).$schema;
  const started = performance.now();
  let validate: ValidateFunction;
  try {
    validate = newAjv().compile(compilable as object);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new BadRequestError("invalid_schema", `the schema cannot be compiled as JSON Schema draft 2020-12: ${message.slice(0, 500)}`);
  }
  const took = performance.now() - started;
  if (took > bounds.maxCompileMs) {
    throw new SchemaLimitError("compile_time", `the schema took ${Math.round(took)} ms to compile; the limit is ${bounds.maxCompileMs} ms (SCHEMA_MAX_COMPILE_MS)`, bounds.maxCompileMs);
  }
  return validate;
}

/** The JSON pointer (RFC 6901) of the value an ajv error is about; a missing property names itself. */
export function violationPointer(e: ErrorObject): string {
  const missing = (e.params as { missingProperty?: string }).missingProperty;
  if (e.keyword === "required" && missing !== undefined) return `${e.instancePath}/${missing.replace(/~/g, "~0").replace(/\//g, "~1")}`;
  return e.instancePath;
}

/**
 * The violations of an event's data against its type's schema: one detail per ajv error, with
 * `pointer` (JSON pointer into the data, "" for the whole of it), `message`, `keyword` and, for an
 * event of a batch, `index`. At most MAX_VIOLATIONS per event.
 */
export function violations(validate: ValidateFunction, data: unknown, index?: number): ErrorDetail[] | null {
  if (validate(data)) return null;
  const out: ErrorDetail[] = [];
  for (const e of validate.errors ?? []) {
    if (out.length >= MAX_VIOLATIONS) break;
    const pointer = violationPointer(e);
    out.push({ pointer, message: `${pointer === "" ? "the data" : pointer} ${e.message ?? "is invalid"}`, keyword: e.keyword, ...(index === undefined ? {} : { index }) });
  }
  return out;
}
