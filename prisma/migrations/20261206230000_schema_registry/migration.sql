-- The schema registry: per tenant and event type, numbered versions of a JSON Schema (draft
-- 2020-12). At ingest an event of a type with a schema is validated against the latest version,
-- and the event records that version (events.schema_version). Deleting a type's schema removes all
-- its versions; a later registration starts again at version 1.
-- An event sent as a CloudEvent keeps the attributes the envelope has no field for (id, subject,
-- time as written, datacontenttype, dataschema, extensions, how its data was encoded) in
-- events.cloudevent, so it can be delivered back as the same CloudEvent.

-- CreateTable
CREATE TABLE "event_schemas" (
    "tenant_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "schema" JSONB NOT NULL,
    "compatibility" TEXT NOT NULL DEFAULT 'backward',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "event_schemas_pkey" PRIMARY KEY ("tenant_id","type","version")
);

-- AlterTable
ALTER TABLE "events" ADD COLUMN "schema_version" INTEGER;
ALTER TABLE "events" ADD COLUMN "cloudevent" JSONB;
