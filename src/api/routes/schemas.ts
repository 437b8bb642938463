import Router from "@koa/router";
import type { Context } from "koa";
import { ENVELOPE_PROPERTIES } from "../../domain/envelope";
import { ConflictError, NotFoundError, SchemaIncompatibleError, ValidationError } from "../../errors";
import { backwardIncompatibilities } from "../../schemas/compatibility";
import { compileSchema } from "../../schemas/compile";
import { deleteSchema, listSchemas, registerSchema, schemaVersions, type SchemaRow } from "../../store/schemas";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";

/** An event type, as the envelope allows it. */
const TYPE_PATTERN = new RegExp(ENVELOPE_PROPERTIES.type.pattern);
const COMPATIBILITY = ["backward", "none"] as const;

const iso = (d: Date | string) => new Date(d).toISOString();
const versionView = (row: SchemaRow) => ({ version: row.version, schema: row.schema, compatibility: row.compatibility, created_at: iso(row.created_at) });

/** The event type of a path; one that cannot be a type is simply not found. */
function typeParam(ctx: Context): string {
  const t = ctx.params.type;
  if (typeof t !== "string" || t.length > ENVELOPE_PROPERTIES.type.maxLength || !TYPE_PATTERN.test(t)) throw new NotFoundError("schema");
  return t;
}

/** PUT's body: `{"schema": <JSON Schema>, "compatibility"?: "backward" | "none"}`. */
function registration(body: unknown): { schema: unknown; compatibility: "backward" | "none" } {
  const details = [];
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new ValidationError("invalid schema registration", [{ path: "", message: "the body must be a JSON object" }]);
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== "schema" && k !== "compatibility") details.push({ path: k, message: `"${k}" is not allowed` });
  if (!("schema" in b)) details.push({ path: "schema", message: `"schema" is required` });
  else if (typeof b.schema !== "boolean" && (b.schema === null || typeof b.schema !== "object" || Array.isArray(b.schema))) details.push({ path: "schema", message: `"schema" must be a JSON Schema (an object or a boolean)` });
  if (b.compatibility !== undefined && !COMPATIBILITY.includes(b.compatibility as "none")) details.push({ path: "compatibility", message: `"compatibility" must be one of ${COMPATIBILITY.join(", ")}` });
  if (details.length > 0) throw new ValidationError("invalid schema registration", details);
  return { schema: b.schema, compatibility: (b.compatibility as "backward" | "none" | undefined) ?? "backward" };
}

/**
 * PUT /schemas/{type}, GET /schemas, GET|DELETE /schemas/{type}: a tenant's schema registry
 * (scope schemas:manage; admin implies it). Only the caller's tenant is ever read or changed.
 */
export function schemaRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const manage = requireScope("schemas:manage");
  const bounds = deps.config.schemas;

  router.put("/schemas/:type", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const type = typeParam(ctx);
    // Room for a schema a little past its bound, so that it is refused naming the bound (400) rather than the body size (413).
    const input = registration(await readJsonBody(ctx, bounds.maxBytes * 2 + 1024));
    compileSchema(input.schema, bounds);
    const result = await registerSchema(deps.db.prisma, principal.tenantId, { type, ...input }, { maxTypes: bounds.maxTypesPerTenant, maxVersions: bounds.maxVersionsPerType }, (previous) =>
      backwardIncompatibilities(previous.schema, input.schema),
    );
    if ("refused" in result) {
      if (result.refused === "incompatible") throw new SchemaIncompatibleError(result.previous.version, result.reasons);
      if (result.refused === "types_quota") throw new ConflictError("schema_quota_exceeded", `the tenant has schemas for ${bounds.maxTypesPerTenant} event types, the most it may have (SCHEMA_MAX_TYPES_PER_TENANT); delete one first`);
      throw new ConflictError("schema_quota_exceeded", `${type} has ${bounds.maxVersionsPerType} versions, the most a type may have (SCHEMA_MAX_VERSIONS_PER_TYPE); delete the type's schema to start again`);
    }
    const row = "created" in result ? result.created : result.unchanged;
    if ("created" in result) await deps.schemas.invalidate(principal.tenantId);
    ctx.status = "created" in result ? 201 : 200;
    ctx.set("Location", `/schemas/${encodeURIComponent(type)}`);
    ctx.body = { type, ...versionView(row) };
  });

  router.get("/schemas", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const rows = await listSchemas(deps.db.prisma, principal.tenantId);
    ctx.body = { data: rows.map((r) => ({ type: r.type, version: r.version, versions: r.versions, compatibility: r.compatibility, created_at: iso(r.created_at) })) };
  });

  router.get("/schemas/:type", manage, async (ctx) => {
    const principal = principalOf(ctx);
    const type = typeParam(ctx);
    const rows = await schemaVersions(deps.db.prisma, principal.tenantId, type);
    const latest = rows[rows.length - 1];
    if (!latest) throw new NotFoundError("schema");
    ctx.body = { type, version: latest.version, schema: latest.schema, versions: rows.map(versionView) };
  });

  router.delete("/schemas/:type", manage, async (ctx) => {
    const principal = principalOf(ctx);
    if (!(await deleteSchema(deps.db.prisma, principal.tenantId, typeParam(ctx)))) throw new NotFoundError("schema");
    await deps.schemas.invalidate(principal.tenantId);
    ctx.status = 204;
  });
  return router;
}
