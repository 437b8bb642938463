import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PrismaClient } from "../generated/prisma/client";
import { createApiKey, findActiveKey, SCOPES } from "../store/api-keys";

/**
 * The embedded default's development key for tenant `dev`: created with every scope on first start,
 * kept in <dataDir>/dev-api-key (mode 0600) and reused while it stays valid.
 */
export async function ensureDevKey(prisma: PrismaClient, dataDir: string): Promise<{ secret: string; created: boolean; file: string }> {
  const file = join(dataDir, "dev-api-key");
  if (existsSync(file)) {
    const secret = readFileSync(file, "utf8").trim();
    if (secret && (await findActiveKey(prisma, secret))) return { secret, created: false, file };
  }
  const key = await createApiKey(prisma, { tenantId: "dev", name: "development key", scopes: [...SCOPES] });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${key.secret}\n`, { mode: 0o600 });
  return { secret: key.secret, created: true, file };
}
