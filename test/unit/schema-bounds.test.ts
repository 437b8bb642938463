import { checkSchemaBounds, regexCost } from "../../src/schemas/bounds";
import { backwardIncompatibilities } from "../../src/schemas/compatibility";

describe("regexCost", () => {
  test.each(["^(a+)+$", "(a*)*", "^(a|aa)+$", "(x+x+)+y", "^(\\d+\\.?)*$", "((ab)*c)+", "(a)\\1", "(?=a)a", "(?<!a)b", "^(a{1,}b?)+$"])("refuses %s", (p) => {
    expect(regexCost(p)).not.toBeNull();
  });
  test.each(["^[a-z]{3}$", "^pay_[A-Za-z0-9]{8,32}$", "^(\\+|-)?\\d+$", "^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$", "\\(a+\\)+", "[(a+)+]", "^(ab){2,5}$", "^\\d{4}-\\d{2}-\\d{2}$"])("accepts %s", (p) => {
    expect(regexCost(p)).toBeNull();
  });
});

describe("checkSchemaBounds", () => {
  const bounds = { maxBytes: 1000, maxDepth: 5, maxNodes: 20, maxCompileMs: 100 };
  test("names the bound a schema passes", () => {
    const limit = (schema: unknown) => {
      try {
        checkSchemaBounds(schema, bounds);
        return null;
      } catch (err) {
        return (err as { details: Array<{ limit: string }> }).details[0]!.limit;
      }
    };
    expect(limit({ type: "object", properties: { a: { $ref: "#/$defs/a" } }, $defs: { a: { type: "string" } } })).toBeNull();
    expect(limit({ description: "x".repeat(1000) })).toBe("schema_bytes");
    expect(limit({ a: { b: { c: { d: { e: {} } } } } })).toBe("schema_depth");
    expect(limit({ anyOf: Array.from({ length: 25 }, () => ({})) })).toBe("schema_nodes");
    expect(limit({ $ref: "http://example.com/x" })).toBe("remote_ref");
    expect(limit({ $dynamicRef: "other#meta" })).toBe("remote_ref");
    expect(limit({ type: "array", uniqueItems: true })).toBe("unique_items");
    expect(limit({ type: "array", uniqueItems: true, maxItems: 100 })).toBeNull();
    // A property named like a keyword is not the keyword.
    expect(limit({ properties: { $ref: { type: "string" }, pattern: { type: "string" } } })).toBeNull();
  });
});

describe("backward compatibility", () => {
  const v1 = { type: "object", required: ["a"], properties: { a: { type: "integer", minimum: 0, maximum: 10 }, b: { enum: ["x", "y"] } }, additionalProperties: false };
  test.each([
    ["a description changes", { ...v1, description: "new" }],
    ["a property is added to a closed object", { ...v1, properties: { ...v1.properties, c: { type: "string" } } }],
    ["integer widens to number", { ...v1, properties: { ...v1.properties, a: { type: "number", minimum: 0, maximum: 10 } } }],
    ["bounds widen", { ...v1, properties: { ...v1.properties, a: { type: "integer", minimum: -1 } } }],
    ["a value is added", { ...v1, properties: { ...v1.properties, b: { enum: ["x", "y", "z"] } } }],
    ["a required name is dropped", { ...v1, required: [] }],
    ["the object opens", { ...v1, additionalProperties: true }],
  ])("compatible when %s", (_name, v2) => {
    expect(backwardIncompatibilities(v1, v2)).toEqual([]);
  });
  test.each([
    ["a name becomes required", { ...v1, required: ["a", "b"] }, "/required"],
    ["a value is removed", { ...v1, properties: { ...v1.properties, b: { enum: ["x"] } } }, "/properties/b/enum"],
    ["a bound tightens", { ...v1, properties: { ...v1.properties, a: { type: "integer", minimum: 0, maximum: 5 } } }, "/properties/a/maximum"],
    ["a type narrows", { ...v1, properties: { ...v1.properties, a: { type: "string" } } }, "/properties/a/type"],
    ["a pattern appears", { ...v1, properties: { ...v1.properties, b: { enum: ["x", "y"], pattern: "x" } } }, "/properties/b/pattern"],
    ["a property is removed from a closed object", { ...v1, properties: { a: v1.properties.a } }, "/additionalProperties"],
    ["everything is refused", false, "/"],
  ])("incompatible when %s", (_name, v2, where) => {
    expect(backwardIncompatibilities(v1, v2).join("\n")).toContain(where);
  });
});
