-- A delivery is written in the same statement that stores its event (insert-events.ts), and an
-- event is deleted only together with its last delivery (expire-events.ts), so the foreign key from
-- deliveries to events guards nothing the statements do not already guarantee. Its per-row check
-- (a key-share lookup of the event for every delivery) cost the fan-out INSERT about an eighth of
-- its time. The key to subscriptions stays: deleting a subscription cascades to its deliveries,
-- and its check keeps a concurrent store from fanning out to a subscription being deleted.
ALTER TABLE "deliveries" DROP CONSTRAINT "deliveries_event_id_fkey";
