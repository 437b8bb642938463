/**
 * The inputs and outputs tables of a Terraform folder's README, generated from its variables.tf
 * and outputs.tf (as terraform-docs would), between `<!-- BEGIN_TF_DOCS -->` and
 * `<!-- END_TF_DOCS -->`. test/terraform/docs.test.ts checks that each README's tables are the
 * generated ones; `UPDATE_TF_DOCS=1 npx jest test/terraform/docs.test.ts --selectProjects unit`
 * rewrites them.
 */
import type { TfConfig } from "./load-hcl";

export const BEGIN = "<!-- BEGIN_TF_DOCS -->";
export const END = "<!-- END_TF_DOCS -->";

const cell = (text: string): string => text.replace(/\s+/g, " ").replace(/\|/g, "\\|").trim();
const code = (text: string): string => `\`${text}\``;

/** `${string}` -> string; multi-line object types on one line, their attributes comma-separated. */
function typeOf(type: unknown): string {
  const text = String(type ?? "any").replace(/^\$\{([\s\S]*)\}$/, "$1");
  return cell(text.replace(/\{\s*\n\s*/g, "{ ").replace(/\s*\n\s*\}/g, " }").replace(/\s*\n\s*/g, ", "));
}

function defaultOf(v: Record<string, unknown>): string {
  if (!("default" in v)) return "required";
  return code(cell(JSON.stringify(v.default)));
}

/** The markdown between the markers: an inputs table and an outputs table, by name. */
export function docsTables(cfg: TfConfig): string {
  const inputs = Object.entries(cfg.variables).map(
    ([name, v]) => `| ${code(name)} | ${cell(String(v.description ?? ""))} | ${code(typeOf(v.type))} | ${defaultOf(v)} |`,
  );
  const outputs = Object.entries(cfg.outputs).map(([name, o]) => `| ${code(name)} | ${cell(String(o.description ?? ""))} |`);
  return [
    "## Inputs",
    "",
    "| Name | Description | Type | Default |",
    "|---|---|---|---|",
    ...inputs,
    "",
    "## Outputs",
    "",
    "| Name | Description |",
    "|---|---|",
    ...outputs,
  ].join("\n");
}

/** The README's text with the generated tables between the markers. */
export function withTables(readme: string, tables: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1 || end < start) throw new Error(`the README has no ${BEGIN} … ${END} section`);
  return `${readme.slice(0, start + BEGIN.length)}\n${tables}\n${readme.slice(end)}`;
}
