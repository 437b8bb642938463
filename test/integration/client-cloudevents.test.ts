import { CloudEvent } from "cloudevents";
import { TriggersClient, TriggersError } from "../../src/client/index";
import { startHarness, type Harness } from "../helpers/harness";

/** The client library speaks CloudEvents both ways; what it receives is a valid event to the official SDK. */
describe("TriggersClient with CloudEvents", () => {
  let h: Harness;
  let client: TriggersClient;

  beforeAll(async () => {
    h = await startHarness();
    client = new TriggersClient({ baseUrl: h.url, apiKey: await h.key("client-ce") });
  });
  afterAll(() => h.close());

  test("structured, binary and batch sends come back from a lease as the same events, acknowledged by their lease", async () => {
    const base = { source: "urn:example:checkout", type: "com.example.cart.checked-out", time: "2026-12-06T12:00:00Z" };
    const structured = await client.sendCloudEvent({ ...base, id: "s-1", subject: "carts/1", tenantregion: "eu", data: { cart: 1 } });
    const binary = await client.sendCloudEvent({ ...base, id: "b-1", subject: "carts/2 ü", datacontenttype: "text/plain", data: "two" }, { mode: "binary" });
    const octets = await client.sendCloudEvent({ ...base, id: "b-2", data_base64: Buffer.from([1, 2, 3]).toString("base64") }, { mode: "binary" });
    const batch = await client.sendCloudEvents([{ ...base, id: "m-1", data: [1] }, { ...base, id: "m-2", data: [2] }]);
    expect([structured, binary, octets, ...batch].every((a) => a.status === "accepted" && !a.replayed)).toBe(true);
    expect((await client.sendCloudEvent({ ...base, id: "s-1", subject: "carts/1", tenantregion: "eu", data: { cart: 1 } })).replayed).toBe(true);

    const seen = new Map<string, CloudEvent<unknown>>();
    await h.eventually(async () => {
      const { events } = await client.leaseCloudEvents({ limit: 10 });
      for (const e of events) {
        // The SDK validates what it is given (specversion, required attributes, extension names).
        seen.set(e.id, new CloudEvent(e as never));
        await client.ack(e.triggersid, e.triggerslease);
      }
      return seen.size === 5;
    });
    expect(seen.get("s-1")).toEqual(expect.objectContaining({ subject: "carts/1", tenantregion: "eu", data: { cart: 1 }, time: "2026-12-06T12:00:00Z" }));
    expect(seen.get("b-1")).toEqual(expect.objectContaining({ subject: "carts/2 ü", datacontenttype: "text/plain", data: "two" }));
    expect(seen.get("b-2")?.data_base64).toBe("AQID");
    expect(seen.get("m-2")?.data).toEqual([2]);
    expect((await client.getCloudEvent(structured.id)).id).toBe("s-1");
  });

  test("a CloudEvent the API refuses is a TriggersError naming the attribute", async () => {
    const err = await client.sendCloudEvent({ id: "x", source: "", type: "com.example.t" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TriggersError);
    expect((err as TriggersError).details).toEqual([expect.objectContaining({ path: "source" })]);
  });
});
