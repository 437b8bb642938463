-- The least-privilege role of the long-running services (api, worker, scheduler): it reads and
-- writes rows, nothing else. The master user keeps DDL and serves only `migrate`.
-- Repeatable: every step tolerates an earlier run, in this schema or another one of the cluster
-- (roles are cluster-wide; two schemas may be migrated at the same time).

-- LOGIN, no password: on RDS it logs in with an IAM token (rds_iam below); elsewhere give it a
-- password or a pg_hba rule of your own.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'triggers_app') THEN
    CREATE ROLE triggers_app LOGIN;
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN NULL; -- created concurrently by another migrate
END
$$;

-- The schema the tables live in (DATABASE_URL ?schema=, else public): usage, row access to every
-- table and sequence now, and to the ones later migrations create.
DO $$
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO triggers_app', current_schema());
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO triggers_app', current_schema());
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO triggers_app', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO triggers_app', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO triggers_app', current_schema());
  -- Prisma's bookkeeping is the migrator's alone.
  EXECUTE format('REVOKE ALL ON TABLE %I._prisma_migrations FROM triggers_app', current_schema());
END
$$;

-- RDS and Aurora: IAM authentication is granted through the rds_iam role, which exists only there.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
    GRANT rds_iam TO triggers_app;
  END IF;
END
$$;
