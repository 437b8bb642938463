import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import Koa from "koa";
import SonicBoom from "sonic-boom";
import { addedHeader, addHeader, applyHeaders, respondJson } from "../../src/api/response-headers";
import { BatchedDestination } from "../../src/observability/logger";

describe("collected response headers", () => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    addHeader(ctx, "X-A", "1");
    addHeader(ctx, "X-A", "2"); // replaces
    addHeader(ctx, "X-B", "b");
    await next();
    applyHeaders(ctx);
  });
  app.use((ctx) => {
    if (ctx.path === "/direct") {
      expect(addedHeader(ctx, "X-A")).toBe("2");
      addHeader(ctx, "X-A", "3");
      addHeader(ctx, "Location", "/x");
      respondJson(ctx, 202, { note: "é ü 😀" });
      return;
    }
    ctx.status = 200;
    ctx.body = { via: "koa" };
  });
  let server: ReturnType<Koa["listen"]>;
  let base: string;
  beforeAll(async () => {
    server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  test("a 202 written in one writeHead carries each header once, with the last value, and its JSON's byte length", async () => {
    const res = await fetch(`${base}/direct`);
    const text = await res.text();
    expect(res.status).toBe(202);
    expect(JSON.parse(text)).toEqual({ note: "é ü 😀" });
    expect(res.headers.get("x-a")).toBe("3"); // fetch would join repeated lines with ", "
    expect(res.headers.get("x-b")).toBe("b");
    expect(res.headers.get("location")).toBe("/x");
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("content-length")).toBe(String(Buffer.byteLength(text)));
  });

  test("any other response gets the collected headers before Koa writes it", async () => {
    const res = await fetch(`${base}/koa`);
    expect(await res.json()).toEqual({ via: "koa" });
    expect([res.headers.get("x-a"), res.headers.get("x-b")]).toEqual(["2", "b"]);
  });
});

describe("batched log destination", () => {
  test("flushSync writes the pending lines before it returns", () => {
    const dir = mkdtempSync(join(tmpdir(), "triggers-log-"));
    try {
      const file = join(dir, "out.log");
      const out = new SonicBoom({ fd: openSync(file, "w"), sync: false, minLength: 0 });
      const dest = new BatchedDestination(out);
      dest.write("one\n");
      dest.write("two\n");
      expect(readFileSync(file, "utf8")).toBe(""); // still waiting for its 10 ms
      dest.flushSync();
      expect(readFileSync(file, "utf8")).toBe("one\ntwo\n");
      out.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
