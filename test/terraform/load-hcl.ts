import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "@cdktf/hcl2json";

/** Repository root and the Terraform folders the static tests read. */
export const REPO_ROOT = join(__dirname, "..", "..");
export const TERRAFORM_DIR = join(REPO_ROOT, "terraform");
export const MODULE_DIR = join(TERRAFORM_DIR, "modules", "triggers");
export const EXAMPLE_DIR = join(TERRAFORM_DIR, "examples", "complete");

/** One HCL block as hcl2json renders it: attributes, nested blocks as arrays, expressions as "${…}" strings. */
export type Block = Record<string, unknown>;

/** The blocks of every .tf file of one Terraform folder, merged by kind and name. */
export interface TfConfig {
  readonly dir: string;
  readonly files: string[];
  readonly resources: Record<string, Record<string, Block>>;
  readonly data: Record<string, Record<string, Block>>;
  readonly variables: Record<string, Block>;
  readonly outputs: Record<string, Block>;
  readonly locals: Record<string, unknown>;
  readonly modules: Record<string, Block>;
  readonly terraform: Block[];
  readonly providers: Record<string, Block>;
}

type Json = Record<string, unknown>;

function asRecord(v: unknown): Json {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {};
}

/** hcl2json wraps every block body in a one-element array. */
function single(v: unknown): Block {
  return asRecord(Array.isArray(v) ? v[0] : v);
}

function addTyped(target: Record<string, Record<string, Block>>, section: unknown, file: string): void {
  for (const [type, byName] of Object.entries(asRecord(section))) {
    for (const [name, body] of Object.entries(asRecord(byName))) {
      target[type] ??= {};
      if (target[type][name]) throw new Error(`${type}.${name} declared twice (second in ${file})`);
      target[type][name] = single(body);
    }
  }
}

function addNamed(target: Record<string, Block>, section: unknown, kind: string, file: string): void {
  for (const [name, body] of Object.entries(asRecord(section))) {
    if (target[name]) throw new Error(`${kind} ${name} declared twice (second in ${file})`);
    target[name] = single(body);
  }
}

/** Parses every .tf file of `dir` with @cdktf/hcl2json. */
export async function loadTerraform(dir: string): Promise<TfConfig> {
  const files = readdirSync(dir).filter((f) => f.endsWith(".tf")).sort();
  const cfg: TfConfig = {
    dir,
    files,
    resources: {},
    data: {},
    variables: {},
    outputs: {},
    locals: {},
    modules: {},
    terraform: [],
    providers: {},
  };
  for (const file of files) {
    const json = asRecord(await parse(file, readFileSync(join(dir, file), "utf8")));
    addTyped(cfg.resources, json.resource, file);
    addTyped(cfg.data, json.data, file);
    addNamed(cfg.variables, json.variable, "variable", file);
    addNamed(cfg.outputs, json.output, "output", file);
    addNamed(cfg.modules, json.module, "module", file);
    addNamed(cfg.providers, json.provider, "provider", file);
    for (const block of (json.locals as unknown[] | undefined) ?? []) {
      for (const [name, value] of Object.entries(asRecord(block))) {
        if (name in cfg.locals) throw new Error(`local.${name} declared twice (second in ${file})`);
        cfg.locals[name] = value;
      }
    }
    for (const block of (json.terraform as unknown[] | undefined) ?? []) cfg.terraform.push(asRecord(block));
  }
  return cfg;
}

/** A resource block, failing the test with a readable message when it is missing. */
export function resource(cfg: TfConfig, type: string, name: string): Block {
  const block = cfg.resources[type]?.[name];
  if (!block) throw new Error(`resource ${type}.${name} not found in ${cfg.dir}`);
  return block;
}

/** A data block, failing the test with a readable message when it is missing. */
export function dataSource(cfg: TfConfig, type: string, name: string): Block {
  const block = cfg.data[type]?.[name];
  if (!block) throw new Error(`data ${type}.${name} not found in ${cfg.dir}`);
  return block;
}

/** Nested blocks (always arrays in hcl2json output). */
export function blocks(block: Block | undefined, key: string): Block[] {
  const v = block?.[key];
  return Array.isArray(v) ? v.map(asRecord) : [];
}

/** A string list attribute, or [] when absent. */
export function strings(block: Block | undefined, key: string): string[] {
  const v = block?.[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) return [String(v)];
  return v.map(String);
}

/** Every string anywhere inside a value (expressions included). */
export function allStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(allStrings);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(allStrings);
  return [];
}
