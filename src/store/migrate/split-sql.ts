/**
 * Splits a migration script into single statements, respecting quotes ('…', "…"),
 * dollar-quoted bodies ($tag$…$tag$) and comments. Needed because the RDS Data API runs
 * one statement per call; the direct runner sends the same statements so both paths
 * apply a migration identically.
 */
export function splitSqlStatements(script: string): string[] {
  const statements: string[] = [];
  let current = "";
  let i = 0;
  const n = script.length;
  while (i < n) {
    const ch = script[i]!;
    const next = script[i + 1];
    if (ch === "-" && next === "-") {
      const end = script.indexOf("\n", i);
      i = end === -1 ? n : end + 1;
      current += "\n";
      continue;
    }
    if (ch === "/" && next === "*") {
      const end = script.indexOf("*/", i + 2);
      i = end === -1 ? n : end + 2;
      current += " ";
      continue;
    }
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < n) {
        if (script[j] === ch) {
          if (script[j + 1] === ch) {
            j += 2; // doubled quote is an escaped quote
            continue;
          }
          break;
        }
        j++;
      }
      current += script.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === "$") {
      const tag = /^\$[A-Za-z_0-9]*\$/.exec(script.slice(i));
      if (tag && !/[A-Za-z_0-9]/.test(script[i - 1] ?? "")) {
        const end = script.indexOf(tag[0], i + tag[0].length);
        const stop = end === -1 ? n : end + tag[0].length;
        current += script.slice(i, stop);
        i = stop;
        continue;
      }
    }
    if (ch === ";") {
      pushStatement(statements, current);
      current = "";
      i++;
      continue;
    }
    current += ch;
    i++;
  }
  pushStatement(statements, current);
  return statements;
}

function pushStatement(into: string[], text: string): void {
  const trimmed = text.trim();
  if (trimmed.length > 0) into.push(trimmed);
}
