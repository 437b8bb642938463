-- Fan-out: named subscriptions per tenant, each with its own delivery state per event.
--
-- An event is stored once (events); each subscription whose filter matches it when it is stored
-- gets one delivery row (deliveries), which holds everything that used to live on the event for
-- the tenant's single inbox: status, lease, delivery count, acknowledgement, death.
-- Every tenant has a subscription named `default` with no filter, so the original endpoints work
-- unchanged. Existing events become deliveries of `default`, keeping their state.

-- CreateTable
CREATE TABLE "subscriptions" (
    "id" SERIAL NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "filter_types" TEXT[],
    "filter_sources" TEXT[],
    "filter_tags" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "subscriptions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "subscriptions_tenant_id_name_key" ON "subscriptions"("tenant_id", "name");

-- CreateTable: the primary key leads with event_id, so an event's deliveries (GET /events/{id},
-- the cascade from events, expiry's "last delivery gone" check) need no index of their own.
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
    "dead_at" TIMESTAMPTZ(3),

    CONSTRAINT "deliveries_pkey" PRIMARY KEY ("event_id", "subscription_id")
);

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_subscription_id_fkey" FOREIGN KEY ("subscription_id") REFERENCES "subscriptions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "events"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Data: a `default` subscription for every tenant that has events or API keys. Created at the
-- epoch, so "receives the events stored after its creation" holds for the events copied below.
INSERT INTO "subscriptions" ("tenant_id", "name", "created_at", "updated_at")
SELECT t.tenant_id, 'default', to_timestamp(0), to_timestamp(0)
FROM (SELECT tenant_id FROM "events" UNION SELECT tenant_id FROM "api_keys") t
ORDER BY t.tenant_id
ON CONFLICT DO NOTHING;

-- Data: every existing event becomes a delivery of its tenant's `default`, with its state as it is.
INSERT INTO "deliveries" ("subscription_id", "event_id", "tenant_id", "type", "source", "tags", "received_at", "status",
    "available_at", "lease_id", "leased_at", "lease_expires_at", "delivery_count", "acknowledged_at", "dead_at")
SELECT s."id", e."id", e."tenant_id", e."type", e."source", COALESCE(e."tags", ARRAY[]::TEXT[]), e."received_at", e."status",
    e."available_at", e."lease_id", e."leased_at", e."lease_expires_at", e."delivery_count", e."acknowledged_at", e."dead_at"
FROM "events" e JOIN "subscriptions" s ON s."tenant_id" = e."tenant_id" AND s."name" = 'default';

-- CreateIndex: the lease walks a subscription's deliverable rows in inbox order.
CREATE INDEX "deliveries_deliverable_idx" ON "deliveries"("tenant_id", "subscription_id", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex: type- and source-filtered leases and peeks read only what matches.
CREATE INDEX "deliveries_deliverable_type_idx" ON "deliveries"("tenant_id", "subscription_id", "type", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex
CREATE INDEX "deliveries_deliverable_source_idx" ON "deliveries"("tenant_id", "subscription_id", "source", "received_at", "event_id") WHERE status IN ('pending', 'delivered');

-- CreateIndex: peek per status.
CREATE INDEX "deliveries_tenant_status_received_idx" ON "deliveries"("tenant_id", "subscription_id", "status", "received_at", "event_id");

-- CreateIndex: expiry per delivery.
CREATE INDEX "deliveries_acknowledged_at_idx" ON "deliveries"("acknowledged_at") WHERE status = 'acknowledged';

-- CreateIndex
CREATE INDEX "deliveries_dead_at_idx" ON "deliveries"("dead_at") WHERE status = 'dead';

-- The delivery state now lives on deliveries: drop it from events, with its indexes.
-- DropIndex
DROP INDEX IF EXISTS "events_deliverable_type_idx";

-- DropIndex
DROP INDEX IF EXISTS "events_deliverable_source_idx";

-- DropIndex
DROP INDEX "events_deliverable_idx";

-- DropIndex
DROP INDEX "events_acknowledged_at_idx";

-- DropIndex
DROP INDEX "events_dead_at_idx";

-- DropIndex
DROP INDEX "events_tenant_status_received_idx";

-- AlterTable
ALTER TABLE "events" DROP COLUMN "status",
DROP COLUMN "available_at",
DROP COLUMN "lease_id",
DROP COLUMN "leased_at",
DROP COLUMN "lease_expires_at",
DROP COLUMN "delivery_count",
DROP COLUMN "acknowledged_at",
DROP COLUMN "dead_at";
