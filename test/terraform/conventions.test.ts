import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { allStrings, blocks, EXAMPLE_DIR, loadTerraform, MODULE_DIR, REPO_ROOT, TERRAFORM_DIR, type TfConfig } from "./load-hcl";

/** Every folder under terraform/ holding .tf files. */
function terraformRoots(dir: string = TERRAFORM_DIR): string[] {
  const here = readdirSync(dir, { withFileTypes: true });
  const nested = here.filter((d) => d.isDirectory() && !d.name.startsWith(".")).flatMap((d) => terraformRoots(join(dir, d.name)));
  return here.some((d) => d.isFile() && d.name.endsWith(".tf")) ? [dir, ...nested] : nested;
}

const roots = terraformRoots();
const configs = new Map<string, TfConfig>();

beforeAll(async () => {
  for (const dir of roots) configs.set(dir, await loadTerraform(dir));
});

test("the module and the complete example are both present", () => {
  expect(roots).toEqual(expect.arrayContaining([MODULE_DIR, EXAMPLE_DIR]));
});

describe.each(roots.map((r) => [r.slice(REPO_ROOT.length + 1), r] as const))("%s", (_label, dir) => {
  test("every variable has a type and a description", () => {
    const cfg = configs.get(dir)!;
    for (const [name, v] of Object.entries(cfg.variables)) {
      expect({ name, typed: typeof v.type === "string" && v.type.length > 0 }).toEqual({ name, typed: true });
      expect({ name, described: typeof v.description === "string" && v.description.trim().length > 10 }).toEqual({
        name,
        described: true,
      });
    }
  });

  test("every output has a description", () => {
    for (const [name, o] of Object.entries(configs.get(dir)!.outputs)) {
      expect({ name, described: typeof o.description === "string" && o.description.length > 0 }).toEqual({ name, described: true });
    }
  });

  test("has versions.tf pinning aws >= 5 and random", () => {
    expect(existsSync(join(dir, "versions.tf"))).toBe(true);
    const providers = configs.get(dir)!.terraform.flatMap((t) => blocks(t, "required_providers"))[0]!;
    expect(String((providers.aws as { version: string }).version)).toMatch(/>=\s*[5-9]/);
    expect(providers.random).toBeDefined();
  });

  // `terraform validate` needs provider downloads; this catches the commonest mistakes it would.
  test("every var., local., resource and data reference resolves", () => {
    const cfg = configs.get(dir)!;
    const expressions = [
      ...Object.values(cfg.resources).flatMap((byName) => Object.values(byName)),
      ...Object.values(cfg.data).flatMap((byName) => Object.values(byName)),
      ...Object.values(cfg.outputs),
      ...Object.values(cfg.modules),
      ...Object.values(cfg.providers),
      cfg.locals,
      ...Object.values(cfg.variables).map((v) => v.validation),
    ]
      .flatMap(allStrings)
      .filter((s) => s.includes("${"));
    const missing: string[] = [];
    for (const s of expressions) {
      for (const m of s.matchAll(/(?<![\w.])var\.([a-z_][a-z0-9_]*)/g)) {
        if (!(m[1]! in cfg.variables)) missing.push(`var.${m[1]}`);
      }
      for (const m of s.matchAll(/(?<![\w.])local\.([a-z_][a-z0-9_]*)/g)) {
        if (!(m[1]! in cfg.locals)) missing.push(`local.${m[1]}`);
      }
      for (const m of s.matchAll(/(?<![\w.])data\.([a-z][a-z0-9_]*)\.([a-z_][a-z0-9_]*)/g)) {
        if (!cfg.data[m[1]!]?.[m[2]!]) missing.push(`data.${m[1]}.${m[2]}`);
      }
      for (const m of s.matchAll(/(?<![\w.:/-])((?:aws|random)_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)/g)) {
        if (!cfg.resources[m[1]!]?.[m[2]!]) missing.push(`${m[1]}.${m[2]}`);
      }
      for (const m of s.matchAll(/(?<![\w.])module\.([a-z_][a-z0-9_]*)/g)) {
        if (!cfg.modules[m[1]!]) missing.push(`module.${m[1]}`);
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });
});

describe("examples/complete", () => {
  test("calls the module with every required variable and only declared ones", async () => {
    const example = configs.get(EXAMPLE_DIR)!;
    const module = configs.get(MODULE_DIR)!;
    const call = Object.values(example.modules).find((m) => m.source === "../../modules/triggers");
    expect(call).toBeDefined();

    const META = new Set(["source", "version", "providers", "count", "for_each", "depends_on"]);
    const passed = Object.keys(call!).filter((k) => !META.has(k));
    const declared = Object.keys(module.variables);
    expect(passed.filter((k) => !declared.includes(k))).toEqual([]);
    const required = Object.entries(module.variables)
      .filter(([, v]) => !("default" in v))
      .map(([k]) => k);
    expect(required.filter((k) => !passed.includes(k))).toEqual([]);
  });

  test("configures the aws provider", () => {
    expect(configs.get(EXAMPLE_DIR)!.providers.aws).toBeDefined();
  });
});

const terraformOnPath = spawnSync("terraform", ["version"], { stdio: "ignore" }).error === undefined;

(terraformOnPath ? test : test.skip)(
  terraformOnPath ? "terraform fmt -check -recursive terraform is clean" : "terraform fmt -check (skipped: terraform is not on PATH)",
  () => {
    const res = spawnSync("terraform", ["fmt", "-check", "-recursive", "-list=true", "terraform"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });
    expect({ status: res.status, unformatted: res.stdout.trim() }).toEqual({ status: 0, unformatted: "" });
  },
);
