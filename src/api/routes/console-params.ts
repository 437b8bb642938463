import { Type } from "@sinclair/typebox";
import { ValidationError } from "../../errors";
import { Instant } from "../contract/schemas";

/*
 * Query and body fields shared by the console's routes (console-events.ts, console-subscriptions.ts).
 */

/** Postgres text cannot hold NUL: the pattern refuses it with a 400 instead of failing in the query. */
export const text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: "^[^\\u0000]*$", description });

/** An RFC 3339 instant with seconds and an offset (INSTANT_SCHEMA), years 1–9999 as written. */
export const instantField = (description: string) => ({ ...Instant, description });

const INSTANT_MIN = Date.parse("0001-01-01T00:00:00.000Z");
const INSTANT_MAX = Date.parse("9999-12-31T23:59:59.999Z");

/** What the schema cannot say about since/until: their years in UTC, and their order. */
export const RANGE_RULES = [
  "since and until, read in UTC, are in the years 1 to 9999: the pattern bounds the year as written, an offset can move it past a bound (400 validation_failed)",
  "until, when given with since, is after since (400 validation_failed)",
];

/** A since/until the schema allowed, as a Date in the years 1–9999 (UTC); 400 otherwise. */
function instant(value: string | undefined, name: string, what: string): Date | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (!(t >= INSTANT_MIN && t <= INSTANT_MAX)) throw new ValidationError(what, [{ path: name, message: `"${name}" must be in the years 1 to 9999` }]);
  return new Date(t);
}

/** The since/until of a query or body as Dates, checked against RANGE_RULES. */
export function range(v: { since?: string; until?: string }, what: string): { since?: Date; until?: Date } {
  const since = instant(v.since, "since", what);
  const until = instant(v.until, "until", what);
  if (since && until && since >= until) throw new ValidationError(what, [{ path: "until", message: "until must be after since" }]);
  return { since, until };
}
