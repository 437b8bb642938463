import type { EventEnvelope } from "../domain/envelope";
import { SchemaValidationError, type ErrorDetail } from "../errors";
import { violations } from "./compile";
import type { CompiledSchema, SchemaRegistry } from "./registry";

/**
 * Validates events of one tenant against the latest schema of their types (the registry's cache):
 * answers, per event, the version it was validated against (undefined when its type has no
 * schema), or throws a 422 schema_validation_failed listing every violation of every event (JSON
 * pointer into the data, message, and `index` for a batch). For a tenant without schemas, once its
 * entry is cached, this is one map lookup and no promise.
 */
export function checkSchemas(registry: SchemaRegistry, tenantId: string, envelopes: readonly EventEnvelope[], batch: boolean): Array<number | undefined> | Promise<Array<number | undefined>> {
  const types = registry.typesOf(tenantId);
  if (types instanceof Map) return validateAll(types, envelopes, batch);
  return (types as Promise<ReadonlyMap<string, CompiledSchema>>).then((t) => validateAll(t, envelopes, batch));
}

function validateAll(types: ReadonlyMap<string, CompiledSchema>, envelopes: readonly EventEnvelope[], batch: boolean): Array<number | undefined> {
  const versions: Array<number | undefined> = new Array(envelopes.length);
  if (types.size === 0) return versions;
  let details: ErrorDetail[] | undefined;
  for (let i = 0; i < envelopes.length; i++) {
    const e = envelopes[i]!;
    const schema = types.get(e.type);
    if (!schema) continue;
    versions[i] = schema.version;
    const found = violations(schema.validate, e.payload, batch ? i : undefined);
    if (found) (details ??= []).push(...found.map((d) => ({ ...d, type: e.type, version: schema.version })));
  }
  if (details) {
    throw new SchemaValidationError(
      batch ? "some events do not match their type's schema; none was accepted" : `the event does not match the schema of its type (version ${versions[0]})`,
      details,
    );
  }
  return versions;
}
