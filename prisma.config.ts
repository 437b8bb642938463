import { defineConfig } from "prisma/config";

// Used by the prisma CLI only (generate, and `migrate deploy` where its engines are available).
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/triggers" },
});
