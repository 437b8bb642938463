import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { onlyOn, startHarness, type Harness } from "../helpers/harness";

const root = join(__dirname, "..", "..");

/** Runs a command; resolves with stdout, rejects with its stderr when it exits non-zero. */
function run(file: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${file} ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** The complete example file of docs/client.md: the js block after the "Example" heading. */
function docsExample(): string {
  const doc = readFileSync(join(root, "docs", "client.md"), "utf8");
  const example = /### Example[^\n]*\n[\s\S]*?```js\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!example) throw new Error("docs/client.md has no ```js block under its Example heading");
  return example;
}

/**
 * The client as another project gets it: `npm run pack:client` builds the tarball, which is
 * installed offline into an empty directory outside the repository (it has no dependencies), and
 * scripts there that know only the package's name produce, consume and run the documented example
 * against a running service.
 */
// One pack per test run: the pglite project would rebuild the same dist/client-package at the same time.
onlyOn("postgres", "packaging does not depend on the store, and one pack per run keeps two runs from rewriting dist/client-package at once").describe(
  "@triggers/client as an installed package",
  () => {
    let h: Harness;
    let project: string;
    let tarball: string;

    beforeAll(async () => {
      h = await startHarness({ env: { RATE_LIMIT_PER_MINUTE: "100000" } });
      const out = await run("npm", ["run", "pack:client"], { cwd: root });
      tarball = out.trim().split("\n").at(-1)!.trim();
      project = mkdtempSync(join(tmpdir(), "triggers-client-user-"));
      writeFileSync(join(project, "package.json"), JSON.stringify({ name: "client-user", version: "1.0.0", private: true }));
      await run("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], { cwd: project });
    }, 240_000);
    afterAll(async () => {
      await h?.close();
      if (project) rmSync(project, { recursive: true, force: true });
    });

    test("pack:client prints the tarball's absolute path last; the installed package has JS, types, no dependencies", async () => {
      expect(isAbsolute(tarball)).toBe(true);
      expect(existsSync(tarball)).toBe(true);
      expect(relative(root, project).startsWith("..")).toBe(true);
      const dir = join(project, "node_modules", "@triggers", "client");
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, unknown>;
      expect(manifest).toMatchObject({ name: "@triggers/client", engines: { node: ">=20" } });
      expect(manifest.dependencies ?? {}).toEqual({});
      expect(existsSync(join(dir, manifest.main as string))).toBe(true);
      expect(existsSync(join(dir, manifest.types as string))).toBe(true);
      // Nothing but the client itself: the service (Prisma, PGlite, ...) is not installed with it.
      expect(readdirSync(join(project, "node_modules")).filter((f) => !f.startsWith(".")).sort()).toEqual(["@triggers"]);
      const shipped = readdirSync(join(dir, "dist")).sort();
      expect(shipped).toEqual(expect.arrayContaining(["index.js", "index.d.ts", "consumer.js", "http.js", "producer.js"]));
      expect(shipped.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
      // The types work for a TypeScript user of the installed package (strict, Node's module resolution).
      writeFileSync(
        join(project, "use.ts"),
        `import { BatchPartiallyAcceptedError, Consumer, TriggersClient, type InboxEvent } from "@triggers/client";
const client = new TriggersClient({ baseUrl: "http://127.0.0.1:1", apiKey: "trg_x" });
export async function f(): Promise<string[]> {
  const page = await client.lease({ subscription: "billing", waitSeconds: 1 });
  const first: InboxEvent | undefined = page.data[0];
  const more: boolean = page.has_more;
  try {
    await client.sendBatch([{ type: "t", payload: {}, idempotency_key: "k" }]);
  } catch (err) {
    if (err instanceof BatchPartiallyAcceptedError) return err.rejected.map((r) => r.idempotency_key);
  }
  new Consumer({ baseUrl: "", apiKey: "", subscription: "billing", handleMessage: async (e) => e.lease_id }).on("error", (e) => e.code);
  return [first?.lease_id ?? "", String(more)];
}
`,
      );
      await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "--strict", "--module", "node16", "--moduleResolution", "node16", "--target", "es2022", "--types", "node", "--typeRoots", join(root, "node_modules", "@types"), "use.ts"], { cwd: project });
    });

    test("a producer script and a Consumer script, requiring only the package's name, deliver every event once", async () => {
      const tenant = "package-user";
      const key = await h.key(tenant);
      const env = { ...process.env, TRIGGERS_URL: h.url, TRIGGERS_KEY: key };
      writeFileSync(
        join(project, "produce.js"),
        `const { TriggersClient } = require("@triggers/client");
const client = new TriggersClient({ baseUrl: process.env.TRIGGERS_URL, apiKey: process.env.TRIGGERS_KEY });
(async () => {
  const one = await client.send({ type: "pkg.test", payload: { n: 0 } });
  const many = await client.sendBatch(Array.from({ length: 19 }, (_, i) => ({ type: "pkg.test", payload: { n: i + 1 } })));
  console.log(JSON.stringify([one, ...many].map((a) => a.id)));
})().catch((err) => { console.error(err); process.exitCode = 1; });
`,
      );
      writeFileSync(
        join(project, "consume.js"),
        `const { Consumer } = require("@triggers/client");
const want = Number(process.argv[2]);
const seen = [];
const consumer = new Consumer({
  baseUrl: process.env.TRIGGERS_URL,
  apiKey: process.env.TRIGGERS_KEY,
  waitSeconds: 2,
  filter: { type: "pkg.test" },
  handleMessage: async (event) => {
    seen.push(event.id);
    if (seen.length === want) void consumer.stop();
  },
});
consumer.on("error", (err) => { console.error(err); process.exitCode = 1; });
consumer.on("stopped", () => console.log(JSON.stringify(seen)));
consumer.start();
`,
      );
      const sent = JSON.parse(await run(process.execPath, ["produce.js"], { cwd: project, env, timeoutMs: 60_000 })) as string[];
      expect(new Set(sent).size).toBe(20);
      const consumed = JSON.parse(await run(process.execPath, ["consume.js", "20"], { cwd: project, env, timeoutMs: 60_000 })) as string[];
      expect([...consumed].sort()).toEqual([...sent].sort());
      const rows = await h.sql<{ status: string; n: number }>("SELECT status::text, count(*)::int AS n FROM deliveries WHERE tenant_id = $1 GROUP BY 1", [tenant]);
      expect(rows).toEqual([{ status: "acknowledged", n: 20 }]);
    }, 120_000);

    test("the example of docs/client.md runs as a file of the installed project, twice (a unique key per run), and exits 0", async () => {
      writeFileSync(join(project, "example.js"), docsExample());
      const key = await h.key("package-example");
      const env = { ...process.env, TRIGGERS_URL: h.url, TRIGGERS_KEY: key };
      for (let i = 0; i < 2; i++) {
        const out = await run(process.execPath, ["example.js"], { cwd: project, env, timeoutMs: 60_000 });
        expect(out).toMatch(/sent evt_\S+/);
        expect(out).toMatch(/handled evt_\S+ order\.created/);
      }
      const rows = await h.sql<{ status: string; n: number }>("SELECT status::text, count(*)::int AS n FROM deliveries WHERE tenant_id = $1 GROUP BY 1", ["package-example"]);
      expect(rows).toEqual([{ status: "acknowledged", n: 2 }]);
    }, 120_000);
  },
);
