import { empty, fragment, join, sql, type Sql } from "../sql";

/** Filters shared by lease and peek mode; every field narrows the set, and they combine with AND. */
export interface InboxFilter {
  readonly type?: string | undefined;
  readonly source?: string | undefined;
  /** The event must carry every one of these tags. */
  readonly tags?: readonly string[] | undefined;
  /** Inclusive lower bound on received_at. */
  readonly since?: Date | undefined;
  /** Exclusive upper bound on received_at, so adjacent windows never overlap. */
  readonly until?: Date | undefined;
}

/**
 * How many rows one tag-filtered lease or peek may examine (per status, in peek mode). Tags have no
 * index (a GIN index cannot return rows in inbox order, so it would cost as much as every match of
 * the tag, and ingest would pay for it): a tag filter reads the oldest TAG_SCAN_LIMIT events that
 * match the other filters and keeps those carrying the tags. Past that bound a lease answers
 * has_more: true (there may be more) and peek returns a next_cursor at the end of what it examined.
 * A consumer that needs a rare tag from a deep backlog should filter by type or source (indexed),
 * or use a subscription carrying the filter.
 */
export const TAG_SCAN_LIMIT = 1000;

/** Whether the filter has a tag condition, i.e. its reads are bounded by TAG_SCAN_LIMIT. */
export function hasTagFilter(filter: InboxFilter): boolean {
  return filter.tags !== undefined && filter.tags.length > 0;
}

/** A filter's columns under one alias (or none), as constant fragments. */
interface FilterColumns {
  readonly type: Sql;
  readonly source: Sql;
  readonly tags: Sql;
  readonly since: Sql;
  readonly until: Sql;
}

const TRUE = fragment("true");
const columnsByAlias = new Map<string, FilterColumns>();

/** The fragments of `alias`, made once per alias (aliases are the statements' own constants). */
function filterColumns(alias: string): FilterColumns {
  let c = columnsByAlias.get(alias);
  if (!c) {
    const col = alias ? `${alias}.` : "";
    c = {
      type: fragment(` AND ${col}type = `),
      source: fragment(` AND ${col}source = `),
      tags: fragment(`${col}tags @> `),
      since: fragment(` AND ${col}received_at >= `),
      until: fragment(` AND ${col}received_at < `),
    };
    columnsByAlias.set(alias, c);
  }
  return c;
}

/**
 * The filter's conditions, each starting with AND, to append to a WHERE clause; values are bind
 * parameters, never text. type, source, since and until are index conditions
 * (deliveries_deliverable_type_idx, deliveries_deliverable_source_idx, and received_at in every
 * inbox index); `tags` is not: pass `{ tags: false }` to leave it out, for the part of a statement
 * that bounds the scan, and add tagSql() where the bounded rows are checked.
 */
export function filterSql(filter: InboxFilter, alias = "", opts: { tags?: boolean } = {}): Sql {
  const c = filterColumns(alias);
  const parts: Sql[] = [];
  if (filter.type !== undefined) parts.push(sql`${c.type}${filter.type}`);
  if (filter.source !== undefined) parts.push(sql`${c.source}${filter.source}`);
  if (opts.tags !== false && hasTagFilter(filter)) parts.push(tagSql(filter, alias));
  if (filter.since !== undefined) parts.push(sql`${c.since}${filter.since}::timestamptz`);
  if (filter.until !== undefined) parts.push(sql`${c.until}${filter.until}::timestamptz`);
  return parts.length === 0 ? empty : join(parts, "");
}

/** The tag condition alone, without a leading AND (true without tags). */
export function tagCondition(filter: InboxFilter, alias = ""): Sql {
  if (!hasTagFilter(filter)) return TRUE;
  return sql`${filterColumns(alias).tags}${[...filter.tags!]}::text[]`;
}

/** The tag condition, starting with AND (empty without tags). */
export function tagSql(filter: InboxFilter, alias = ""): Sql {
  if (!hasTagFilter(filter)) return empty;
  return sql` AND ${tagCondition(filter, alias)}`;
}
