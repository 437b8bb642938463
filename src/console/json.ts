import { h, type ComponentChild } from "preact";

/*
 * Syntax-highlighted JSON built from text nodes and spans: a payload is hostile input, so none of
 * it is ever parsed as markup (no innerHTML anywhere in the console).
 */

/** Indentation stops growing past this depth (deeper levels show their depth instead), so deep nesting cannot push text off the page. */
const MAX_INDENT = 8;

function indent(depth: number): string {
  return depth <= MAX_INDENT ? "  ".repeat(depth) : `${"  ".repeat(MAX_INDENT)}(depth ${depth}) `;
}

function node(value: unknown, depth: number, out: ComponentChild[]): void {
  if (value === null) out.push(h("span", { class: "j-null" }, "null"));
  else if (typeof value === "string") out.push(h("span", { class: "j-str" }, JSON.stringify(value)));
  else if (typeof value === "number") out.push(h("span", { class: "j-num" }, String(value)));
  else if (typeof value === "boolean") out.push(h("span", { class: "j-bool" }, String(value)));
  else if (Array.isArray(value)) {
    if (value.length === 0) return void out.push("[]");
    out.push("[\n");
    value.forEach((v, i) => {
      out.push(indent(depth + 1));
      node(v, depth + 1, out);
      out.push(i < value.length - 1 ? ",\n" : "\n");
    });
    out.push(`${indent(depth)}]`);
  } else if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return void out.push("{}");
    out.push("{\n");
    entries.forEach(([k, v], i) => {
      out.push(indent(depth + 1));
      out.push(h("span", { class: "j-key" }, JSON.stringify(k)));
      out.push(": ");
      node(v, depth + 1, out);
      out.push(i < entries.length - 1 ? ",\n" : "\n");
    });
    out.push(`${indent(depth)}}`);
  } else out.push(String(value));
}

/** A <pre> of the value as indented, highlighted JSON. */
export function JsonView(props: { value: unknown; label: string }) {
  const out: ComponentChild[] = [];
  node(props.value, 0, out);
  return h("pre", { class: "json", tabIndex: 0, "aria-label": props.label, "data-testid": "payload" }, out);
}
