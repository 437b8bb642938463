import { decodeQueuedMessage, encodeQueuedEvent, type QueuedEvent } from "../../src/domain/queued-event";
import { inexactNumber } from "../../src/api/middleware/json-body";

const event = (payload: unknown, source: string | null = null): QueuedEvent => ({
  v: 1,
  id: "evt_01JABCDEFGHJKMNPQRSTVWXYZ0",
  tenant_id: "t",
  type: "t.x",
  payload,
  source,
  tags: [],
  occurred_at: null,
  idempotency_key: null,
  body_hash: "a".repeat(64),
  received_at: "2026-01-01T00:00:00.000Z",
});

describe("queue body encoding", () => {
  test("every body is printable ASCII (plus JSON's own escapes) and decodes to the same event", () => {
    const samples = ["😀🎉", "\uFFFE\uFFFF", "café", "注文", "\u2028\u2029", "\u007f", "\u0001\t\n", "a\u0300", "\u{10FFFF}", "plain"];
    for (const s of samples) {
      const e = event({ [s]: s, list: [s, { deep: s }] }, s);
      const body = encodeQueuedEvent(e);
      expect(body).toMatch(/^[\x20-\x7f]*$/);
      expect(decodeQueuedMessage(body)).toEqual({ events: [e], invalid: 0 });
    }
  });

  test("random code points from the whole Unicode range round-trip", () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 200; n++) {
      let s = "";
      for (let i = 0; i < 20; i++) {
        let cp = Math.floor(rnd() * 0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
        s += String.fromCodePoint(cp);
      }
      const e = event({ s });
      const body = encodeQueuedEvent(e);
      expect(body).toMatch(/^[\x20-\x7f]*$/);
      expect(decodeQueuedMessage(body).events[0]!.payload).toEqual({ s });
    }
  });

  test("an ASCII event is encoded as plain JSON", () => {
    const e = event({ a: 1 });
    expect(encodeQueuedEvent(e)).toBe(JSON.stringify(e));
  });
});

describe("inexactNumber", () => {
  test.each([
    ["1e400", "1e400"],
    ['{"a":[1,2,-1e309]}', "-1e309"],
    ["9007199254740993", "9007199254740993"],
    ["[12345678901234567890]", "12345678901234567890"],
    ["1e-400", "1e-400"],
    ["0.30000000000000000000001", "0.30000000000000000000001"],
  ])("%s holds %s, which a double changes", (text, token) => {
    expect(inexactNumber(text)).toBe(token);
  });

  test.each([
    '{"a":1,"b":-2.5,"c":0.1,"d":1e2,"e":1E+2,"f":-0.0,"g":0.000}',
    "9007199254740991",
    "-9007199254740991",
    "1.7976931348623157e308",
    "5e-324",
    "123456789012345",
    '{"s":"12345678901234567890 1e400 inside a string","t":"esc \\" 1e999"}',
    '["\\\\", 1]',
  ])("%s is kept exactly", (text) => {
    expect(inexactNumber(text)).toBeNull();
  });
});
