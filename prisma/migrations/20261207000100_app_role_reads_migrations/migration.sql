-- The services' readiness check `schema` (src/store/schema-version.ts) reads which migrations are
-- applied: the least-privilege role may read Prisma's bookkeeping, never change it.
DO $$
BEGIN
  EXECUTE format('GRANT SELECT ON TABLE %I._prisma_migrations TO triggers_app', current_schema());
END
$$;
