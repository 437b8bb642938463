import Ajv2020 from "ajv/dist/2020";
import type { ErrorDetail } from "../errors";
import { ajvDetails, ENVELOPE_LIMITS, ENVELOPE_PROPERTIES, scanJson } from "./envelope";

/** Most values a filter's types or sources list. */
export const MAX_FILTER_VALUES = 100;

const list = (items: object, maxItems: number) => ({ type: "array", minItems: 1, maxItems, uniqueItems: true, items } as const);
const { examples: _examples, ...typeItem } = ENVELOPE_PROPERTIES.type;

/**
 * A subscription's filter as JSON Schema: each value follows the rules of the event field it is
 * compared with (ENVELOPE_PROPERTIES), so a filter can only name values an event can carry. Tags
 * list at most as many as an event carries. The API validates with it and /openapi.json embeds it.
 */
export const SUBSCRIPTION_FILTER_SCHEMA = Object.freeze({
  type: "object",
  description:
    "Types and sources match any listed value; tags must all be present; an absent field matches all. Each value follows the rules of the event field it matches (sources: no NUL character or unpaired surrogate).",
  additionalProperties: false,
  properties: {
    types: list(typeItem, MAX_FILTER_VALUES),
    sources: list({ type: "string", minLength: 1, maxLength: ENVELOPE_LIMITS.sourceMaxLength }, MAX_FILTER_VALUES),
    tags: list({ ...ENVELOPE_PROPERTIES.tags.items, minLength: 1 }, ENVELOPE_LIMITS.maxTags),
  },
} as const);

const validateFilter = new Ajv2020({ allErrors: true, strict: true }).compile(SUBSCRIPTION_FILTER_SCHEMA);

/** The field errors of a filter value (paths under `at`, e.g. "filter.types.0"); none when it is valid. */
export function checkSubscriptionFilter(filter: unknown, at = "filter"): ErrorDetail[] {
  const prefix = (d: ErrorDetail): ErrorDetail => ({ ...d, path: d.path === "" ? at : `${at}.${d.path}`, message: d.message.replace(/^"([^"]*)"/, (_m, p: string) => JSON.stringify(p === "value" ? at : `${at}.${p}`)) });
  if (!validateFilter(filter)) return ajvDetails(validateFilter.errors).map(prefix);
  const sources = (filter as { sources?: string[] }).sources;
  if (sources !== undefined && !scanJson(sources).storable) {
    return [{ path: `${at}.sources`, message: `"${at}.sources" contains a NUL character or an unpaired surrogate, which no event's source can hold` }];
  }
  return [];
}
