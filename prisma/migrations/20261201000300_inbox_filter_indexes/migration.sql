-- Filtered inbox reads at depth: a lease or peek filtered by type or source walks only the
-- deliverable rows of that type (or source), in inbox order, instead of every deliverable row of
-- the tenant (events_deliverable_idx) with the filter applied row by row.
-- Both are partial on the deliverable rows, so acknowledged and dead history costs them nothing.
-- Tags have no index: a tag filter is a bounded scan (see src/store/events/inbox-filter.ts).
-- IF NOT EXISTS: on a large table, build them first with CREATE INDEX CONCURRENTLY (same names,
-- same definitions), outside this migration's transaction; it then only records them.

-- CreateIndex
CREATE INDEX IF NOT EXISTS "events_deliverable_type_idx" ON "events"("tenant_id", "type", "received_at", "id") WHERE status IN ('pending', 'delivered');

-- CreateIndex
CREATE INDEX IF NOT EXISTS "events_deliverable_source_idx" ON "events"("tenant_id", "source", "received_at", "id") WHERE status IN ('pending', 'delivered');
