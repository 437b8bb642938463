-- Time-partitioned history (docs/scheduler.md#retention). events and deliveries become
-- PARTITION BY RANGE (received_at), so retention drops whole partitions instead of deleting rows.
--
-- * Primary keys include the partition key: events (id, received_at), deliveries
--   (event_id, subscription_id, received_at). Every other index stays, as a partitioned index of
--   the same name. There is no DEFAULT partition (it would forbid DETACH ... CONCURRENTLY).
-- * A unique constraint on a partitioned table must include the partition key, so the
--   (tenant_id, idempotency_key) uniqueness moves to its own table, idempotency_keys; a key
--   goes with its event's partition.
-- * Partitions are created by one function, triggers_ensure_partitions, which this migration,
--   the worker at start, the scheduler's expiry job and the worker's insert (on a row outside
--   every partition) all call. It runs with its owner's rights (SECURITY DEFINER), so the
--   least-privilege app role creates partitions without any DDL right of its own.
--
-- The copy below rewrites both tables in this migration's transaction: about 16 s per million
-- events with one delivery each (docs/performance.md#partition-migration).

-- The bounds of the partitions of a parent, read from the catalog (detach-pending ones included:
-- they still own their range until finalized).
CREATE FUNCTION "triggers_partition_bounds"(p_parent text)
RETURNS TABLE ("name" text, "lower" timestamptz, "upper" timestamptz, "detach_pending" boolean)
LANGUAGE sql STABLE AS $$
  SELECT c.relname::text,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']*)''\)')::timestamptz,
         substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']*)''\)')::timestamptz,
         i.inhdetachpending
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = to_regclass(p_parent)
$$;

-- Creates the partitions of events and deliveries (one pair per range, same bounds and suffix)
-- that cover [p_from, p_to). A missing range becomes one slot of the width, aligned to a multiple
-- of the width since the epoch and clipped to its neighbours, so a new partition starts at the
-- previous one's upper bound and a change of width never overlaps. p_width_seconds NULL: the
-- width of the newest partition (one day when there is none). Named <parent>_pYYYYMMDDtHHMMSS after
-- the lower bound in UTC. Idempotent, and serialised by a transaction-scoped advisory lock, so
-- concurrent callers never race. Answers how many ranges it created. At most 1000 per call.
CREATE FUNCTION "triggers_ensure_partitions"(p_from timestamptz, p_to timestamptz, p_width_seconds integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  width_s double precision;
  parent text;
  t timestamptz;
  lo timestamptz;
  hi timestamptz;
  gap_lo timestamptz;
  gap_hi timestamptz;
  part text;
  created integer := 0;
BEGIN
  IF p_from IS NULL OR p_to IS NULL OR p_to <= p_from THEN
    RETURN 0;
  END IF;
  IF p_width_seconds IS NOT NULL AND p_width_seconds < 60 THEN
    RAISE EXCEPTION 'partition width must be at least 60 seconds, got %', p_width_seconds;
  END IF;
  -- "partit" in ASCII.
  PERFORM pg_advisory_xact_lock(123563834370420);
  FOREACH parent IN ARRAY ARRAY['events', 'deliveries'] LOOP
    IF p_width_seconds IS NULL THEN
      SELECT extract(epoch FROM b.upper - b.lower) INTO width_s FROM triggers_partition_bounds(parent) b ORDER BY b.upper DESC LIMIT 1;
      width_s := coalesce(width_s, 86400);
    ELSE
      width_s := p_width_seconds;
    END IF;
    t := p_from;
    WHILE t < p_to LOOP
      SELECT b.upper INTO hi FROM triggers_partition_bounds(parent) b WHERE b.lower <= t AND t < b.upper;
      IF FOUND THEN
        t := hi;
        CONTINUE;
      END IF;
      SELECT max(b.upper) INTO gap_lo FROM triggers_partition_bounds(parent) b WHERE b.upper <= t;
      SELECT min(b.lower) INTO gap_hi FROM triggers_partition_bounds(parent) b WHERE b.lower > t;
      lo := to_timestamp(floor(extract(epoch FROM t) / width_s) * width_s);
      hi := lo + make_interval(secs => width_s);
      IF gap_lo IS NOT NULL AND gap_lo > lo THEN lo := gap_lo; END IF;
      IF gap_hi IS NOT NULL AND gap_hi < hi THEN hi := gap_hi; END IF;
      part := parent || '_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS');
      IF to_regclass(part) IS NOT NULL THEN
        -- A table of that name that does not cover t: a partition detached by an interrupted
        -- retirement. The next retirement run attaches it back or drops it.
        RAISE EXCEPTION 'table % exists but is not a partition of % covering %', part, parent, t USING ERRCODE = 'duplicate_table';
      END IF;
      -- Created alone, then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent, which
      -- inserts, leases and reads do not wait for (CREATE TABLE ... PARTITION OF would take ACCESS
      -- EXCLUSIVE on it and could deadlock with a statement reading both parents).
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
      created := created + 1;
      IF created > 2000 THEN
        RAISE EXCEPTION 'more than 1000 partitions asked for in one call (% .. %)', p_from, p_to;
      END IF;
      t := hi;
    END LOOP;
  END LOOP;
  RETURN created / 2;
END
$$;

-- Retention (src/store/retention.ts) for a role that does not own the tables (the app role):
-- DETACH ... CONCURRENTLY needs the owner and cannot run in a function (it commits twice), so such
-- a role detaches with a plain DETACH here, one parent per call (so one lock at a time: no
-- deadlock with a statement reading both), under a short lock_timeout: a catalog change that
-- holds the parent's ACCESS EXCLUSIVE lock for milliseconds, or does not get it within 500 ms and
-- is tried again by the next run. p_suffix names the pair: pYYYYMMDDtHHMMSS, nothing else.
CREATE FUNCTION "triggers_detach_partition"(p_parent text, p_suffix text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF p_suffix !~ '^p[0-9]{8}t[0-9]{6}$' OR p_parent NOT IN ('events', 'deliveries') THEN
    RAISE EXCEPTION 'not a partition of the history: % %', p_parent, p_suffix;
  END IF;
  PERFORM set_config('lock_timeout', '500', true);
  EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', p_parent, p_parent || '_' || p_suffix);
END
$$;

-- Attaches a detached pair back (a live row was found in it after its detach).
CREATE FUNCTION "triggers_attach_partitions"(p_suffix text, p_lower timestamptz, p_upper timestamptz)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  parent text;
BEGIN
  IF p_suffix !~ '^p[0-9]{8}t[0-9]{6}$' THEN
    RAISE EXCEPTION 'not a partition suffix: %', p_suffix;
  END IF;
  FOREACH parent IN ARRAY ARRAY['events', 'deliveries'] LOOP
    IF to_regclass(parent || '_' || p_suffix) IS NOT NULL
       AND NOT (SELECT relispartition FROM pg_class WHERE oid = to_regclass(parent || '_' || p_suffix)) THEN
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, parent || '_' || p_suffix, p_lower, p_upper);
    END IF;
  END LOOP;
END
$$;

-- Drops a detached pair: only tables of the pair's names that are no longer partitions.
CREATE FUNCTION "triggers_drop_detached_partitions"(p_suffix text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  parent text;
  dropped integer := 0;
BEGIN
  IF p_suffix !~ '^p[0-9]{8}t[0-9]{6}$' THEN
    RAISE EXCEPTION 'not a partition suffix: %', p_suffix;
  END IF;
  FOREACH parent IN ARRAY ARRAY['deliveries', 'events'] LOOP
    IF to_regclass(parent || '_' || p_suffix) IS NOT NULL
       AND NOT (SELECT relispartition FROM pg_class WHERE oid = to_regclass(parent || '_' || p_suffix)) THEN
      EXECUTE format('DROP TABLE %I', parent || '_' || p_suffix);
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END
$$;

-- The functions resolve table names in this schema whatever the caller's search_path, and only
-- the app role (and the owner) may call the ones with the owner's rights.
DO $$
DECLARE
  fn text;
BEGIN
  EXECUTE format('ALTER FUNCTION triggers_partition_bounds(text) SET search_path = %I, pg_temp', current_schema());
  FOREACH fn IN ARRAY ARRAY['triggers_ensure_partitions(timestamptz, timestamptz, integer)', 'triggers_detach_partition(text, text)',
      'triggers_attach_partitions(text, timestamptz, timestamptz)', 'triggers_drop_detached_partitions(text)'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', fn, current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'triggers_app') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO triggers_app', fn);
    END IF;
  END LOOP;
END
$$;

-- The old tables step aside; their indexes go first (their names are taken by the new ones).
ALTER TABLE "events" RENAME TO "events_unpartitioned";
ALTER TABLE "deliveries" RENAME TO "deliveries_unpartitioned";
ALTER TABLE "events_unpartitioned" DROP CONSTRAINT "events_pkey";
DROP INDEX "events_tenant_idempotency_key_key";
ALTER TABLE "deliveries_unpartitioned" DROP CONSTRAINT "deliveries_pkey";
ALTER TABLE "deliveries_unpartitioned" DROP CONSTRAINT "deliveries_subscription_id_fkey";
DROP INDEX "deliveries_deliverable_idx";
DROP INDEX "deliveries_deliverable_type_idx";
DROP INDEX "deliveries_deliverable_source_idx";
DROP INDEX "deliveries_tenant_status_received_idx";
DROP INDEX "deliveries_acknowledged_at_idx";
DROP INDEX "deliveries_dead_at_idx";

-- CreateTable
CREATE TABLE "events" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "source" TEXT,
    "payload" JSONB NOT NULL,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "idempotency_key" TEXT,
    "body_hash" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3),
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "stored_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "schema_version" INTEGER,
    "cloudevent" JSONB
) PARTITION BY RANGE ("received_at");

-- CreateTable
CREATE TABLE "deliveries" (
    "subscription_id" INTEGER NOT NULL,
    "event_id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "source" TEXT,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "status" "event_status" NOT NULL DEFAULT 'pending',
    "available_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lease_id" UUID,
    "leased_at" TIMESTAMPTZ(3),
    "lease_expires_at" TIMESTAMPTZ(3),
    "delivery_count" INTEGER NOT NULL DEFAULT 0,
    "acknowledged_at" TIMESTAMPTZ(3),
    "dead_at" TIMESTAMPTZ(3)
) PARTITION BY RANGE ("received_at");

-- CreateTable: who holds an idempotency key, while its event lives (deleted with the event's partition).
CREATE TABLE "idempotency_keys" (
    "tenant_id" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "body_hash" TEXT NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("tenant_id", "idempotency_key")
);

-- Partitions for every stored row, the day before today and three days ahead, one day wide.
SELECT triggers_ensure_partitions(
  least((SELECT min(received_at) FROM events_unpartitioned), (SELECT min(received_at) FROM deliveries_unpartitioned), now() - interval '1 day'),
  now() + interval '3 days 1 second',
  86400);

-- Data: the rows, as they are.
INSERT INTO "events" ("id", "tenant_id", "type", "source", "payload", "tags", "idempotency_key", "body_hash", "occurred_at", "received_at", "stored_at", "schema_version", "cloudevent")
SELECT "id", "tenant_id", "type", "source", "payload", "tags", "idempotency_key", "body_hash", "occurred_at", "received_at", "stored_at", "schema_version", "cloudevent"
FROM "events_unpartitioned";

INSERT INTO "deliveries" ("subscription_id", "event_id", "tenant_id", "type", "source", "tags", "received_at", "status", "available_at",
    "lease_id", "leased_at", "lease_expires_at", "delivery_count", "acknowledged_at", "dead_at")
SELECT "subscription_id", "event_id", "tenant_id", "type", "source", "tags", "received_at", "status", "available_at",
    "lease_id", "leased_at", "lease_expires_at", "delivery_count", "acknowledged_at", "dead_at"
FROM "deliveries_unpartitioned";

INSERT INTO "idempotency_keys" ("tenant_id", "idempotency_key", "event_id", "received_at", "body_hash")
SELECT "tenant_id", "idempotency_key", "id", "received_at", "body_hash" FROM "events_unpartitioned" WHERE "idempotency_key" IS NOT NULL;

-- Keys and indexes after the copy (one build per partition instead of one update per row).
ALTER TABLE "events" ADD CONSTRAINT "events_pkey" PRIMARY KEY ("id", "received_at");

ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_pkey" PRIMARY KEY ("event_id", "subscription_id", "received_at");

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_subscription_id_fkey" FOREIGN KEY ("subscription_id") REFERENCES "subscriptions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateIndex
CREATE INDEX "deliveries_deliverable_idx" ON "deliveries"("tenant_id", "subscription_id", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex
CREATE INDEX "deliveries_deliverable_type_idx" ON "deliveries"("tenant_id", "subscription_id", "type", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex
CREATE INDEX "deliveries_deliverable_source_idx" ON "deliveries"("tenant_id", "subscription_id", "source", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex
CREATE INDEX "deliveries_tenant_status_received_idx" ON "deliveries"("tenant_id", "subscription_id", "status", "received_at", "event_id");

-- CreateIndex
CREATE INDEX "deliveries_acknowledged_at_idx" ON "deliveries"("acknowledged_at") WHERE status = 'acknowledged';

-- CreateIndex
CREATE INDEX "deliveries_dead_at_idx" ON "deliveries"("dead_at") WHERE status = 'dead';

-- CreateIndex: retirement deletes a dropped partition's keys by received_at range.
CREATE INDEX "idempotency_keys_received_at_idx" ON "idempotency_keys"("received_at");

-- DropTable
DROP TABLE "events_unpartitioned";

-- DropTable
DROP TABLE "deliveries_unpartitioned";
