import { parseArgs } from "node:util";
import { requireCommandDatabase, type Config } from "../config";
import { createApiKey, listApiKeys, revokeApiKey, SCOPES, type Scope } from "../store/api-keys";
import { openDatabase } from "../store/database";
import { UsageError } from "./usage-error";

/** The --scopes list, each one of SCOPES. */
function parseScopes(raw: string | undefined): Scope[] {
  const scopes = (raw ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0) {
    throw new UsageError(`--scopes must list one or more of ${SCOPES.join(", ")}${bad.length ? ` (unknown: ${bad.join(", ")})` : ""}`);
  }
  return scopes as Scope[];
}

/** `triggers keys create|list|revoke`: manages API keys directly in the database. */
export async function cmdKeys(config: Config, args: string[]): Promise<void> {
  requireCommandDatabase(config, "keys");
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tenant: { type: "string" },
      scopes: { type: "string" },
      name: { type: "string" },
      "rate-limit": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const [action, ...rest] = positionals;
  if (action === "create") {
    if (!values.tenant || !/^[A-Za-z0-9_.-]{1,128}$/.test(values.tenant)) throw new UsageError("--tenant is required (letters, digits, _ . -)");
    const scopes = parseScopes(values.scopes);
    const rateLimit = values["rate-limit"] === undefined ? null : Number(values["rate-limit"]);
    if (rateLimit !== null && (!Number.isInteger(rateLimit) || rateLimit < 1)) throw new UsageError("--rate-limit must be a positive integer (requests per minute)");
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      const key = await createApiKey(db.prisma, { tenantId: values.tenant, name: values.name ?? "api key", scopes, rateLimit });
      if (values.json) process.stdout.write(`${JSON.stringify({ id: key.id, tenant: key.tenantId, name: key.name, scopes: key.scopes, key: key.secret })}\n`);
      else process.stdout.write(`created ${key.id} for tenant ${key.tenantId} (${key.scopes.join(", ")})\n\n  ${key.secret}\n\nThis key is shown only once.\n`);
    } finally {
      await db.close();
    }
    return;
  }
  if (action === "list") {
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      const keys = await listApiKeys(db.prisma, values.tenant);
      if (values.json) process.stdout.write(`${JSON.stringify(keys)}\n`);
      else for (const k of keys) process.stdout.write(`${k.id}  ${k.tenantId}  ${k.prefix}…  ${k.scopes.join(",")}  ${k.revokedAt ? "revoked" : "active"}  ${k.name}\n`);
    } finally {
      await db.close();
    }
    return;
  }
  if (action === "revoke") {
    const id = rest[0];
    if (!id) throw new UsageError("keys revoke needs a key id");
    const db = await openDatabase(config, { poolSize: 1 });
    try {
      if (!(await revokeApiKey(db.prisma, id))) throw new UsageError(`no such key: ${id}`);
      process.stdout.write(`revoked ${id}\n`);
    } finally {
      await db.close();
    }
    return;
  }
  throw new UsageError("keys needs one of: create, list, revoke");
}
