import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configurationTable, loadConfig, VARIABLES } from "../../src/config";

/* The configuration table of docs/operations.md is the one VARIABLES in src/config.ts renders. */

const DOC = join(__dirname, "..", "..", "docs", "operations.md");

describe("configuration declared once", () => {
  it("docs/operations.md's table is the one the declarations render", () => {
    const doc = readFileSync(DOC, "utf8");
    const start = doc.indexOf("| Variable | Default | Meaning |");
    expect(start).toBeGreaterThan(-1);
    const end = doc.indexOf("\n\n", start);
    // On a difference, paste configurationTable()'s output over the table.
    expect(doc.slice(start, end === -1 ? undefined : end)).toBe(configurationTable());
  });

  it("every declared default is what an empty environment loads, and each passes its own schema", () => {
    for (const [name, v] of Object.entries(VARIABLES)) {
      if (!("default" in v)) continue;
      expect({ name, error: v.schema.validate(v.default).error?.message }).toEqual({ name, error: undefined });
    }
    const c = loadConfig({});
    expect(c.port).toBe(VARIABLES.PORT.default);
    expect(c.worker.waitSeconds).toBe(VARIABLES.WORKER_WAIT_SECONDS.default);
  });

  it("WORKER_WAIT_SECONDS is a long poll: 1 to 20 seconds", () => {
    expect(() => loadConfig({ WORKER_WAIT_SECONDS: "0" })).toThrow(/WORKER_WAIT_SECONDS/);
    expect(loadConfig({ WORKER_WAIT_SECONDS: "1" }).worker.waitSeconds).toBe(1);
    expect(() => loadConfig({ WORKER_WAIT_SECONDS: "21" })).toThrow(/WORKER_WAIT_SECONDS/);
  });
});
