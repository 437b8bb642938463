import { checkSchemaBounds } from "../../src/schemas/bounds";
import { compileSchema } from "../../src/schemas/compile";
import { compileLinear, linearSyntaxError, toRe2Syntax } from "../../src/schemas/linear-regexp";
import { backwardIncompatibilities } from "../../src/schemas/compatibility";

describe("schema patterns run on a linear-time engine", () => {
  // Each of these backtracks exponentially (or as a high power of the input) on V8's engine: on
  // 40 characters of "a" and a final "c", V8 would not finish within the test's deadline.
  test.each([
    ["^(a+)+$", "a"],
    ["^(a*)*$", "a"],
    ["^(a|aa)+$", "a"],
    ["^(x+x+)+y$", "x"],
    ["^(\\d+\\.?)*$", "1"],
    ["^(a*){30}b$", "a"],
    ["^" + "a*".repeat(40) + "b$", "a"],
    ["^(\\w+\\s?)*$", "a"],
  ])("%s is accepted and matches in linear time", (p, unit) => {
    expect(linearSyntaxError(p)).toBeNull();
    const re = compileLinear(p);
    expect(re.test(unit.repeat(40) + "!")).toBe(false);
    expect(re.test(unit.repeat(20_000) + "!")).toBe(false);
  });
  test("a compiled schema's pattern and patternProperties use it", () => {
    const validate = compileSchema({ type: "object", properties: { s: { type: "string", pattern: "^(a*){30}b$" } }, patternProperties: { "^(x+x+)+y$": { type: "integer" } } }, { maxBytes: 10_000, maxDepth: 10, maxNodes: 100, maxCompileMs: 10_000 });
    expect(validate({ s: "a".repeat(40) + "c" })).toBe(false);
    expect(validate({ s: "aaab", ["x".repeat(40) + "y"]: "not an integer" })).toBe(false);
    expect(validate({ s: "aaab", ["x".repeat(40) + "y"]: 1 })).toBe(true);
  });
  test.each(["(a)\\1", "(?=a)a", "(?<!a)b", "(?<n>a)\\k<n>", "a(?!b)"])("refuses %s (no engine bounds its cost)", (p) => {
    expect(linearSyntaxError(p)).not.toBeNull();
  });
  test.each([
    ["^[\\u0000-\\u007F]*$", "abc", "é"],
    ["^\\uD83D\\uDE00$", "\u{1F600}", "\uD83D"],
    ["^\\u{1F600}$", "\u{1F600}", "x"],
    ["^\\\\u0041$", "\\u0041", "A"],
    ["^pay_[A-Za-z0-9]{8,32}$", "pay_abcdefgh", "pay_abc"],
    ["^\\d{4}-\\d{2}-\\d{2}$", "2026-12-07", "2026-1-07"],
    ["^\\p{Lu}", "Élan", "élan"],
    ["^.$", "\u{1F600}", "ab"],
  ])("ECMAScript syntax %s keeps its meaning (matches %j, not %j)", (p, yes, no) => {
    const re = compileLinear(p);
    expect([re.test(yes), re.test(no)]).toEqual([true, false]);
    expect([new RegExp(p, "u").test(yes), new RegExp(p, "u").test(no)]).toEqual([true, false]);
  });
  test("\\u escapes become RE2's \\x{…}, a surrogate pair one code point", () => {
    expect(toRe2Syntax("[\\u0000-\\u007F]")).toBe("[\\x{0}-\\x{7f}]");
    expect(toRe2Syntax("\\uD83D\\uDE00")).toBe("\\x{1f600}");
    expect(toRe2Syntax("\\\\u0041")).toBe("\\\\u0041");
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

test("a schema slower to compile than SCHEMA_MAX_COMPILE_MS is refused, naming compile_time", () => {
  const schema = { type: "object", properties: { a: { type: "string", pattern: "^a+$" } } };
  const bounds = { maxBytes: 10_000, maxDepth: 10, maxNodes: 100, maxCompileMs: 10_000 };
  expect(() => compileSchema(schema, bounds)).not.toThrow();
  // Any compile takes more than -1 ms: the bound is measured around the compile, not estimated.
  expect(() => compileSchema(schema, { ...bounds, maxCompileMs: -1 })).toThrow(expect.objectContaining({ details: [expect.objectContaining({ limit: "compile_time" })] }));
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
