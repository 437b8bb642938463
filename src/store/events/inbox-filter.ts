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

/**
 * Appends the filter's conditions to a WHERE clause. Values go into `params` (the caller's
 * positional parameter list) and only `$n` placeholders into the SQL, so no input is ever spliced.
 * type, source, since and until are index conditions (events_deliverable_type_idx,
 * events_deliverable_source_idx, and received_at in every inbox index); `tags` is not: pass
 * `{ tags: false }` to leave it out, for the part of a statement that bounds the scan, and add
 * tagSql() where the bounded rows are checked.
 */
export function filterSql(filter: InboxFilter, params: unknown[], alias = "", opts: { tags?: boolean } = {}): string {
  const col = (name: string) => (alias ? `${alias}.${name}` : name);
  const add = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  let sql = "";
  if (filter.type !== undefined) sql += ` AND ${col("type")} = ${add(filter.type)}`;
  if (filter.source !== undefined) sql += ` AND ${col("source")} = ${add(filter.source)}`;
  if (opts.tags !== false && hasTagFilter(filter)) sql += tagSql(filter, params, alias);
  if (filter.since !== undefined) sql += ` AND ${col("received_at")} >= ${add(filter.since)}::timestamptz`;
  if (filter.until !== undefined) sql += ` AND ${col("received_at")} < ${add(filter.until)}::timestamptz`;
  return sql;
}

/** The tag condition alone (empty without tags). */
export function tagSql(filter: InboxFilter, params: unknown[], alias = ""): string {
  if (!hasTagFilter(filter)) return "";
  params.push([...filter.tags!]);
  return ` AND ${alias ? `${alias}.` : ""}tags @> $${params.length}::text[]`;
}
