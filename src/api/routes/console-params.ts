import Joi from "joi";
import { isInstant } from "../../domain/envelope";

/*
 * Query and body fields shared by the console's routes (console-events.ts, console-subscriptions.ts).
 */

/** Postgres text cannot hold NUL: refused with a 400 instead of failing in the query. */
export const text = (max: number) => Joi.string().min(1).max(max).pattern(/^[^\u0000]*$/).messages({ "string.pattern.base": "{{#label}} must not contain NUL" });

const INSTANT_MIN = Date.parse("0001-01-01T00:00:00.000Z");
const INSTANT_MAX = Date.parse("9999-12-31T23:59:59.999Z");

/** An RFC 3339 instant with seconds and an offset (INSTANT_SCHEMA), years 1–9999; answers a Date. */
export const instant = () =>
  Joi.string()
    .custom((value: string, helpers) => {
      const t = Date.parse(value);
      return isInstant(value) && t >= INSTANT_MIN && t <= INSTANT_MAX ? new Date(t) : helpers.error("instant.format");
    })
    .messages({ "instant.format": "{{#label}} must be an RFC 3339 date-time with seconds and a UTC offset in the years 1 to 9999, e.g. 2026-01-02T03:04:05Z" });
