import { parseRetryAfter } from "../../src/client/http";
import { encodeWake } from "../../src/inbox/wakeups";

describe("parseRetryAfter", () => {
  test("delta-seconds, HTTP dates, and nonsense", () => {
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter("0")).toBe(0);
    const now = Date.parse("2026-12-01T10:00:00Z");
    expect(parseRetryAfter("Tue, 01 Dec 2026 10:00:05 GMT", now)).toBe(5);
    expect(parseRetryAfter("Tue, 01 Dec 2026 09:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("")).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter("-1")).toBeUndefined();
  });
});

describe("encodeWake", () => {
  test("names tenants and types, with the due time when given", () => {
    expect(JSON.parse(encodeWake(new Map([["t1", new Set(["a", "b"])], ["t2", null]])))).toEqual({ t: [["t1", ["a", "b"]], ["t2", null]] });
    expect(JSON.parse(encodeWake(new Map([["t1", null]]), new Date(5000)))).toEqual({ at: 5000, t: [["t1", null]] });
  });

  test("degrades to tenants only, then to everyone, to stay under the NOTIFY payload limit", () => {
    const manyTypes = new Map([["t1", new Set(Array.from({ length: 200 }, (_, i) => `type.${i}.${"x".repeat(60)}`))]]);
    expect(JSON.parse(encodeWake(manyTypes))).toEqual({ t: [["t1", null]] });
    const manyTenants = new Map(Array.from({ length: 200 }, (_, i) => [`tenant-${i}-${"y".repeat(60)}`, null] as [string, null]));
    const encoded = encodeWake(manyTenants);
    expect(encoded.length).toBeLessThan(8000);
    expect(JSON.parse(encoded)).toEqual({});
  });
});
