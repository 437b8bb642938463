-- Deleting a subscription marks it (deleted_at) and answers at once; its deliveries are purged in
-- bounded batches afterwards (src/jobs/purge-subscriptions.ts), and the row itself goes with the last
-- batch. A marked subscription is invisible to the API, receives no fan-out and gives no leases.
-- Its name is free again at once: the name is unique among the live subscriptions only.

-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN "deleted_at" TIMESTAMPTZ(3);

-- DropIndex
DROP INDEX "subscriptions_tenant_id_name_key";

-- CreateIndex
CREATE UNIQUE INDEX "subscriptions_tenant_id_name_key" ON "subscriptions"("tenant_id", "name") WHERE deleted_at IS NULL;

-- CreateIndex: the purge finds the marked subscriptions.
CREATE INDEX "subscriptions_deleted_at_idx" ON "subscriptions"("deleted_at") WHERE deleted_at IS NOT NULL;
