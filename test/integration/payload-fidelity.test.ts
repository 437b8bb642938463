import { startHarness, type Harness } from "../helpers/harness";

/** A payload is stored as sent or refused with a 400: never changed silently. */
describe("payload fidelity: numbers and timestamps", () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness();
    key = await h.key("fidelity");
  });
  afterAll(() => h.close());

  const postRaw = (raw: string, path = "/events") => h.request("POST", path, { key, raw, headers: { "Content-Type": "application/json" } });
  const stored = async (id: string) =>
    (
      await h.eventually(async () => {
        const r = await h.sql<{ payload: unknown; occurred_at: Date | null }>("SELECT payload, occurred_at FROM events WHERE id = $1 AND tenant_id = 'fidelity'", [id]);
        return r.length === 1 ? r : undefined;
      })
    )[0]!;

  test.each(["1e400", "-1e400", "12345678901234567890", "9007199254740993", "1e-400", "0.12345678901234567890123"])(
    "the number %s, which a double cannot hold exactly, is refused with 400",
    async (n) => {
      const res = await postRaw(`{"type":"t.n","payload":{"v":${n}}}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("unrepresentable_number");
      expect(res.body.error.message).toContain(n);
    },
  );

  test("the same check applies to batch items", async () => {
    const res = await postRaw(`{"events":[{"type":"t.n","payload":1},{"type":"t.n","payload":{"big":18446744073709551615}}]}`, "/events/batch");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("unrepresentable_number");
  });

  test("numbers a double holds exactly are accepted and stored with their value", async () => {
    const res = await postRaw(`{"type":"t.n","payload":{"a":9007199254740991,"b":-9007199254740991,"c":0.1,"d":1.5e3,"e":1E2,"f":-0.0,"g":123456789.12345,"h":"12345678901234567890 in a string is text","i":2.5e-300}}`);
    expect(res.status).toBe(202);
    expect((await stored(res.body.id)).payload).toEqual({ a: 9007199254740991, b: -9007199254740991, c: 0.1, d: 1500, e: 100, f: 0, g: 123456789.12345, h: "12345678901234567890 in a string is text", i: 2.5e-300 });
  });

  test("occurred_at without a UTC offset is refused with 400 naming the field", async () => {
    for (const t of ["2026-01-02T03:04:05", "2026-01-02T03:04:05.123", "2026-01-02"]) {
      const res = await h.request("POST", "/events", { key, body: { type: "t.o", payload: 1, occurred_at: t } });
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe("occurred_at");
    }
  });

  test("occurred_at with an offset is stored as that instant", async () => {
    const res = await h.request("POST", "/events", { key, body: { type: "t.o", payload: 1, occurred_at: "2026-01-02T03:04:05+02:00" } });
    expect(res.status).toBe(202);
    expect((await stored(res.body.id)).occurred_at!.toISOString()).toBe("2026-01-02T01:04:05.000Z");
    const z = await h.request("POST", "/events", { key, body: { type: "t.o", payload: 1, occurred_at: "2026-01-02T03:04:05.5Z" } });
    expect(z.status).toBe(202);
  });
});
