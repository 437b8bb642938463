import { Type } from "@sinclair/typebox";
import { ENVELOPE_PROPERTIES } from "../../domain/envelope";
import { ConflictError, NotFoundError, SchemaIncompatibleError, ValidationError } from "../../errors";
import { backwardIncompatibilities } from "../../schemas/compatibility";
import { compileSchema } from "../../schemas/compile";
import { deleteSchema, listSchemas, registerSchema, schemaVersions, type SchemaRow } from "../../store/schemas";
import { operation } from "../contract/operation";
import { SchemaDetailSchema, SchemaListSchema, SchemaRegisteredSchema, SchemaRegistrationSchema } from "../contract/schemas";
import { principalOf } from "../middleware/auth";

/*
 * PUT /schemas/{type}, GET /schemas, GET|DELETE /schemas/{type}: a tenant's schema registry
 * (scope schemas:manage; admin implies it). Only the caller's tenant is ever read or changed.
 */

const COMPATIBILITY = ["backward", "none"] as const;

const iso = (d: Date | string) => new Date(d).toISOString();
const versionView = (row: SchemaRow) => ({ version: row.version, schema: row.schema, compatibility: row.compatibility, created_at: iso(row.created_at) });

/** The `{type}` of a schema path: an event type as the envelope allows it; one that cannot be a type is simply not found. */
const typeParams = Type.Object({ type: Type.String({ ...ENVELOPE_PROPERTIES.type, description: "An event type (as the envelope's `type`); an unknown one, or one that cannot be a type, is 404." }) });
const noQuery = Type.Object({}, { additionalProperties: false });

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

const location = { Location: { description: "The type's schema URL", required: true, schema: { type: "string", pattern: "^/schemas/" } } };

export const registerSchemaOperation = operation({
  id: "registerSchema",
  method: "PUT",
  path: "/schemas/{type}",
  tag: "schemas",
  scope: "schemas:manage",
  summary: "Register a new version of a type's schema",
  description:
    "Registers a JSON Schema (draft 2020-12) for an event type as its next version (201); the same schema as the latest answers 200 with it. From then on an event of the type is validated against it at ingest (422 schema_validation_failed). " +
    "With compatibility `backward` (the default) the new version must provably accept every event the latest accepts (409 schema_incompatible, details name each reason; docs/schemas.md states the rule); `none` skips the check. " +
    "Bounded (400 schema_limit_exceeded, details name the limit): SCHEMA_MAX_BYTES, SCHEMA_MAX_DEPTH, SCHEMA_MAX_NODES, only in-document `$ref`s (remote_ref), patterns run in linear time, so no backreferences or lookarounds (pattern_cost, pattern_length), uniqueItems only with maxItems ≤ 1000 (unique_items), SCHEMA_MAX_COMPILE_MS (compile_time). " +
    "400 invalid_schema for what is not a 2020-12 schema. 409 schema_quota_exceeded past SCHEMA_MAX_TYPES_PER_TENANT or SCHEMA_MAX_VERSIONS_PER_TYPE.",
  params: typeParams,
  query: noQuery,
  // Room for a schema a little past its bound, so that it is refused naming the bound (400) rather than the body size (413).
  body: { schema: SchemaRegistrationSchema, required: true, limit: (deps) => deps.config.schemas.maxBytes * 2 + 1024 },
  responses: {
    200: { description: "The same schema is the latest version already", schema: SchemaRegisteredSchema, headers: location },
    201: { description: "Registered as a new version", schema: SchemaRegisteredSchema, headers: location },
  },
  errors: { 400: ["invalid_schema", "schema_limit_exceeded"], 404: ["not_found"], 409: ["schema_incompatible", "schema_quota_exceeded"] },
  rules: [
    "schema is a JSON Schema of draft 2020-12 (400 invalid_schema) within the registry's bounds (400 schema_limit_exceeded, details name the limit), holding no NUL character or unpaired surrogate (400 invalid_schema)",
    "with compatibility backward, the schema accepts every event the type's latest version accepts (409 schema_incompatible)",
    "the tenant has at most SCHEMA_MAX_TYPES_PER_TENANT types and each type at most SCHEMA_MAX_VERSIONS_PER_TYPE versions (409 schema_quota_exceeded)",
  ],
  handler: (deps) => async (ctx, { params, body }) => {
    const principal = principalOf(ctx);
    const bounds = deps.config.schemas;
    const type = params.type;
    const input = registration(body);
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
  },
});

export const listSchemasOperation = operation({
  id: "listSchemas",
  method: "GET",
  path: "/schemas",
  tag: "schemas",
  scope: "schemas:manage",
  summary: "List the tenant's event types with a schema",
  description: "Each type's latest version and how many versions it has.",
  query: noQuery,
  responses: { 200: { description: "The types", schema: SchemaListSchema } },
  handler: (deps) => async (ctx) => {
    const principal = principalOf(ctx);
    const rows = await listSchemas(deps.db.prisma, principal.tenantId);
    ctx.body = { data: rows.map((r) => ({ type: r.type, version: r.version, versions: r.versions, compatibility: r.compatibility, created_at: iso(r.created_at) })) };
  },
});

export const getSchemaOperation = operation({
  id: "getSchema",
  method: "GET",
  path: "/schemas/{type}",
  tag: "schemas",
  scope: "schemas:manage",
  summary: "Read a type's schema with its versions",
  params: typeParams,
  query: noQuery,
  responses: { 200: { description: "The latest version and every version, oldest first", schema: SchemaDetailSchema } },
  handler: (deps) => async (ctx, { params }) => {
    const principal = principalOf(ctx);
    const type = params.type;
    const rows = await schemaVersions(deps.db.prisma, principal.tenantId, type);
    const latest = rows[rows.length - 1];
    if (!latest) throw new NotFoundError("schema");
    ctx.body = { type, version: latest.version, schema: latest.schema, versions: rows.map(versionView) };
  },
});

export const deleteSchemaOperation = operation({
  id: "deleteSchema",
  method: "DELETE",
  path: "/schemas/{type}",
  tag: "schemas",
  scope: "schemas:manage",
  summary: "Delete a type's schema, every version",
  description: "Events of the type are no longer validated (every API process within SCHEMA_CACHE_TTL_MS, at once with Redis). A later registration starts at version 1.",
  params: typeParams,
  query: noQuery,
  responses: { 204: { description: "Deleted" } },
  handler: (deps) => async (ctx, { params }) => {
    const principal = principalOf(ctx);
    if (!(await deleteSchema(deps.db.prisma, principal.tenantId, params.type))) throw new NotFoundError("schema");
    await deps.schemas.invalidate(principal.tenantId);
    ctx.status = 204;
  },
});
