import { createHash } from "node:crypto";
import { EVENT_ID_PATTERN } from "../domain/ids";
import { BadRequestError } from "../errors";
import type { KeysetPosition } from "../store/events/peek-events";

/*
 * The opaque next_cursor of GET /inbox?mode=peek: the API's codec for the store's keyset
 * position. A cursor that does not decode is the client's error (400 invalid_cursor).
 */

const VERSION = 1;

/**
 * A short fingerprint of the query a cursor belongs to (status and filters), so a cursor is only
 * accepted by the listing that issued it: reusing it under other filters would silently skip rows.
 */
export function queryFingerprint(query: unknown): string {
  return createHash("sha256").update(JSON.stringify(query)).digest("base64url").slice(0, 12);
}

/** Encodes a position as an opaque base64url cursor. */
export function encodeCursor(position: KeysetPosition, fingerprint: string): string {
  const body = JSON.stringify({ v: VERSION, r: position.receivedAt.toISOString(), i: position.id, f: fingerprint });
  return Buffer.from(body, "utf8").toString("base64url");
}

const invalid = () => new BadRequestError("invalid_cursor", "the cursor is malformed or belongs to another query");

/** Decodes a cursor issued by `encodeCursor` for the same query; anything else is a 400 invalid_cursor. */
export function decodeCursor(cursor: string, fingerprint: string): KeysetPosition {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (parsed === null || typeof parsed !== "object") throw invalid();
  const { v, r, i, f } = parsed as Record<string, unknown>;
  if (v !== VERSION || f !== fingerprint || typeof i !== "string" || !EVENT_ID_PATTERN.test(i) || typeof r !== "string") throw invalid();
  const receivedAt = new Date(r);
  // Only the exact form toISOString produces round-trips; anything else was edited by hand.
  if (Number.isNaN(receivedAt.getTime()) || receivedAt.toISOString() !== r) throw invalid();
  // Years Postgres and ISO 8601 share; a forged date outside them would fail in the query.
  const year = receivedAt.getUTCFullYear();
  if (year < 1 || year > 9999) throw invalid();
  return { receivedAt, id: i };
}
