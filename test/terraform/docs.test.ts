/**
 * The module's and the example's READMEs carry inputs and outputs tables generated from
 * variables.tf and outputs.tf (./module-docs.ts). A variable or output added, removed or
 * re-described without regenerating fails here. UPDATE_TF_DOCS=1 rewrites the tables.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLE_DIR, loadTerraform, MODULE_DIR } from "./load-hcl";
import { BEGIN, docsTables, END, withTables } from "./module-docs";

describe.each([
  ["terraform/modules/triggers", MODULE_DIR],
  ["terraform/examples/complete", EXAMPLE_DIR],
])("%s/README.md", (_label, dir) => {
  const file = join(dir, "README.md");

  test("exists and has a generated inputs/outputs section", () => {
    expect(existsSync(file)).toBe(true);
    const text = readFileSync(file, "utf8");
    expect(text).toContain(BEGIN);
    expect(text).toContain(END);
  });

  test("its inputs and outputs tables match variables.tf and outputs.tf", async () => {
    const cfg = await loadTerraform(dir);
    const text = readFileSync(file, "utf8");
    const expected = withTables(text, docsTables(cfg));
    if (process.env.UPDATE_TF_DOCS === "1" && text !== expected) writeFileSync(file, expected);
    expect(text).toBe(expected);
    // Every variable and output is in the tables.
    for (const name of [...Object.keys(cfg.variables), ...Object.keys(cfg.outputs)]) expect(text).toContain(`| \`${name}\` |`);
  });
});

test("the tables notice a variable that is missing from them", async () => {
  const cfg = await loadTerraform(MODULE_DIR);
  const text = readFileSync(join(MODULE_DIR, "README.md"), "utf8");
  const broken = text.replace(/^\| `log_level` \|.*\n/m, "");
  expect(broken).not.toBe(text);
  expect(withTables(broken, docsTables(cfg))).not.toBe(broken);
});
