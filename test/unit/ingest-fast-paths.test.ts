import { canonicalJson, checkEnvelope } from "../../src/domain/envelope";

/** The canonical JSON of before the hand-written serialiser: equal output keeps stored body hashes valid. */
function referenceCanonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${referenceCanonical(v)}`).join(",")}}`;
}

const payloads: unknown[] = [
  {},
  [],
  null,
  0,
  "s",
  { b: 1, a: [1, { d: null, c: "x" }], "é": "ü", "\u{1F600}": true, Z: undefined },
  { nested: { deeper: { deepest: [[[]]] } } },
  JSON.parse('{"ka":"\\ud800x"}'),
  { n: "\u0000" },
  JSON.parse(`${"[".repeat(40)}${"]".repeat(40)}`),
];

const candidates: Record<string, unknown>[] = [];
for (const type of ["order.created", "", "bad type", "x".repeat(128), "x".repeat(129), 7, undefined])
  for (const payload of [...payloads, undefined])
    for (const source of [undefined, null, "", "src", "\u0000", 3, "s".repeat(257)])
      for (const tags of [undefined, [], ["a", "b"], ["a", "a"], [""], ["bad tag"], Array.from({ length: 21 }, (_, i) => `t${i}`), "a", [1]])
        for (const occurred_at of [undefined, null, "2026-01-02T03:04:05Z", "nope"])
          for (const extra of [false, true]) {
            const e: Record<string, unknown> = {};
            if (type !== undefined) e.type = type;
            if (payload !== undefined) e.payload = payload;
            if (source !== undefined) e.source = source;
            if (tags !== undefined) e.tags = tags;
            if (occurred_at !== undefined) e.occurred_at = occurred_at;
            if (extra) e.extra = 1;
            candidates.push(e);
          }

describe("ingest fast paths", () => {
  test("canonicalJson is byte-identical to the reference serialiser", () => {
    for (const p of payloads) expect(canonicalJson(p)).toBe(referenceCanonical(p));
    for (const c of candidates.slice(0, 2000)) expect(canonicalJson(c)).toBe(referenceCanonical(c));
  });

  test("refusals keep Joi's field paths", () => {
    const r = checkEnvelope({ type: "bad type", payload: {}, tags: ["ok", "bad tag"] });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.details.map((d) => d.path)).toEqual(["type", "tags.1"]);
  });
});
