import { RDSDataClient } from "@aws-sdk/client-rds-data";
import { requireCommandDatabase, type Config } from "../config";
import { openDatabase, parseDatabaseUrl } from "../store/database";
import { dataApiExecutor } from "../store/migrate/data-api-executor";
import { applyMigrations, loadMigrations } from "../store/migrate/migrations";
import { createSchemaStatement } from "../store/migrate/schemas";

/** `triggers migrate`: applies the migrations the database lacks, through the Aurora Data API when configured. */
export async function cmdMigrate(config: Config): Promise<void> {
  requireCommandDatabase(config, "migrate");
  if (config.dataApi) {
    // Through the Aurora Data API: no database connection, no queue, nothing else is built.
    const client = new RDSDataClient({ region: config.sqs.region });
    try {
      const result = await applyMigrations(dataApiExecutor(client, config.dataApi), loadMigrations(), (line) => process.stdout.write(`${line}\n`));
      process.stdout.write(`database is up to date (${result.applied.length} applied, ${result.alreadyApplied.length} already applied)\n`);
    } finally {
      client.destroy();
    }
    return;
  }
  const db = await openDatabase(config, { poolSize: 1 });
  try {
    // Prisma's `?schema=` names the schema every table lives in; the first migrate creates it.
    const schema = config.databaseUrl ? parseDatabaseUrl(config.databaseUrl).schema : undefined;
    if (schema) await db.migrator.query(createSchemaStatement(schema, { ifNotExists: true }));
    const result = await applyMigrations(db.migrator, loadMigrations(), (line) => process.stdout.write(`${line}\n`));
    process.stdout.write(`database is up to date (${result.applied.length} applied, ${result.alreadyApplied.length} already applied)\n`);
  } finally {
    await db.close();
  }
}
