import { isDeepStrictEqual } from "node:util";

/*
 * The `backward` compatibility rule between two versions of a type's schema: the new version must
 * accept every event the previous one accepted, so a producer still sending the previous shape is
 * never refused after a registration. Deciding that for any two JSON Schemas is not possible in
 * general; the rule below proves it structurally for the keywords that describe data shapes and
 * refuses any other change it cannot prove (docs/schemas.md lists it):
 * - `type` may only widen (absent means any type; `integer` is within `number`);
 * - `required` may only lose names;
 * - a property kept is compared recursively; a property added must accept what the previous
 *   version allowed for it (its additionalProperties: anything when absent or true, nothing when
 *   false); a property removed must be accepted by the new additionalProperties;
 * - `additionalProperties` and `items` are compared recursively (absent means true);
 * - `enum`/`const` may only gain values (and may not appear where there was none);
 * - lower bounds (minimum, exclusiveMinimum, minLength, minItems, minProperties) may only fall,
 *   upper bounds (maximum, exclusiveMaximum, maxLength, maxItems, maxProperties) only rise, and
 *   neither may appear where there was none;
 * - annotations (title, description, examples, default, deprecated, $comment, …) may change freely;
 * - every other keyword (pattern, format, multipleOf, uniqueItems, allOf/anyOf/oneOf/not, $ref,
 *   $defs, if/then/else, patternProperties, …) must stay exactly as it was.
 * Answers the reasons against, each naming a JSON pointer into the schema; none means compatible.
 */

type Schema = boolean | Record<string, unknown>;

const ANNOTATIONS = new Set(["title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly", "$comment", "$id", "$schema", "$anchor", "contentMediaType", "contentEncoding"]);
const LOWER = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"] as const;
const UPPER = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"] as const;
const HANDLED = new Set<string>(["type", "required", "properties", "additionalProperties", "items", "enum", "const", ...LOWER, ...UPPER]);
const ALL_TYPES = ["string", "number", "integer", "boolean", "object", "array", "null"];

const asSchema = (v: unknown): Schema => (typeof v === "boolean" ? v : v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : true);
const acceptsAll = (s: Schema): boolean => s === true || (typeof s === "object" && Object.keys(s).every((k) => ANNOTATIONS.has(k)));
const esc = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");

function typesOf(s: Record<string, unknown>): Set<string> {
  const t = s.type;
  if (t === undefined) return new Set(ALL_TYPES);
  return new Set(Array.isArray(t) ? (t as string[]) : [t as string]);
}

/** Reasons the new schema may refuse something the old one accepted; empty when the rule proves it does not. */
export function backwardIncompatibilities(oldSchema: unknown, newSchema: unknown): string[] {
  const reasons: string[] = [];
  compare(asSchema(oldSchema), asSchema(newSchema), "", reasons);
  return reasons.slice(0, 50);
}

function compare(o: Schema, n: Schema, at: string, reasons: string[]): void {
  if (isDeepStrictEqual(o, n) || acceptsAll(n) || o === false) return;
  if (n === false) return void reasons.push(`${at || "/"}: the new version accepts nothing here`);
  if (o === true) return void reasons.push(`${at || "/"}: the previous version accepted anything here; the new one constrains it`);
  const on = o as Record<string, unknown>;
  const nn = n as Record<string, unknown>;

  const oldTypes = typesOf(on);
  const newTypes = typesOf(nn);
  for (const t of oldTypes) {
    if (!newTypes.has(t) && !(t === "integer" && newTypes.has("number"))) reasons.push(`${at}/type: no longer allows ${t}`);
  }

  const oldRequired = new Set((on.required as string[] | undefined) ?? []);
  for (const r of (nn.required as string[] | undefined) ?? []) if (!oldRequired.has(r)) reasons.push(`${at}/required: "${r}" is newly required`);

  const oldProps = (on.properties as Record<string, unknown> | undefined) ?? {};
  const newProps = (nn.properties as Record<string, unknown> | undefined) ?? {};
  const oldAdditional = asSchema(on.additionalProperties ?? true);
  const newAdditional = asSchema(nn.additionalProperties ?? true);
  for (const [k, ns] of Object.entries(newProps)) {
    const os = k in oldProps ? asSchema(oldProps[k]) : oldAdditional;
    compare(os, asSchema(ns), `${at}/properties/${esc(k)}`, reasons);
  }
  for (const [k, os] of Object.entries(oldProps)) if (!(k in newProps)) compare(asSchema(os), newAdditional, `${at}/additionalProperties (for "${k}")`, reasons);
  compare(oldAdditional, newAdditional, `${at}/additionalProperties`, reasons);
  if (on.items !== undefined || nn.items !== undefined) compare(asSchema(on.items ?? true), asSchema(nn.items ?? true), `${at}/items`, reasons);

  const oldValues = on.const !== undefined ? [on.const] : (on.enum as unknown[] | undefined);
  const newValues = nn.const !== undefined ? [nn.const] : (nn.enum as unknown[] | undefined);
  if (newValues !== undefined) {
    if (oldValues === undefined) reasons.push(`${at}/enum: a list of values where any was allowed`);
    else for (const v of oldValues) if (!newValues.some((w) => isDeepStrictEqual(v, w))) reasons.push(`${at}/enum: ${JSON.stringify(v)} is no longer allowed`);
  }

  for (const k of LOWER) {
    const ov = on[k] as number | undefined;
    const nv = nn[k] as number | undefined;
    if (nv !== undefined && (ov === undefined || nv > ov)) reasons.push(`${at}/${k}: raised to ${nv}${ov === undefined ? " (was absent)" : ` (was ${ov})`}`);
  }
  for (const k of UPPER) {
    const ov = on[k] as number | undefined;
    const nv = nn[k] as number | undefined;
    if (nv !== undefined && (ov === undefined || nv < ov)) reasons.push(`${at}/${k}: lowered to ${nv}${ov === undefined ? " (was absent)" : ` (was ${ov})`}`);
  }

  const keys = new Set([...Object.keys(on), ...Object.keys(nn)]);
  for (const k of keys) {
    if (HANDLED.has(k) || ANNOTATIONS.has(k)) continue;
    if (!isDeepStrictEqual(on[k], nn[k])) reasons.push(`${at}/${esc(k)}: changed, and the rule cannot prove the change accepts every earlier event`);
  }
}
