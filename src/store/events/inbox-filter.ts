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
 * Appends the filter's conditions to a WHERE clause. Values go into `params` (the caller's
 * positional parameter list) and only `$n` placeholders into the SQL, so no input is ever spliced.
 */
export function filterSql(filter: InboxFilter, params: unknown[], alias = ""): string {
  const col = (name: string) => (alias ? `${alias}.${name}` : name);
  const add = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  let sql = "";
  if (filter.type !== undefined) sql += ` AND ${col("type")} = ${add(filter.type)}`;
  if (filter.source !== undefined) sql += ` AND ${col("source")} = ${add(filter.source)}`;
  if (filter.tags !== undefined && filter.tags.length > 0) sql += ` AND ${col("tags")} @> ${add([...filter.tags])}::text[]`;
  if (filter.since !== undefined) sql += ` AND ${col("received_at")} >= ${add(filter.since)}::timestamptz`;
  if (filter.until !== undefined) sql += ` AND ${col("received_at")} < ${add(filter.until)}::timestamptz`;
  return sql;
}
