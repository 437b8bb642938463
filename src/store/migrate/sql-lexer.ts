/** One span of a SQL script, as Postgres's lexer would bound it. */
export interface SqlToken {
  readonly kind: "line-comment" | "block-comment" | "string" | "dollar-quoted" | "parameter" | "semicolon" | "text";
  readonly text: string;
}

const IDENT_CHAR = /[A-Za-z0-9_$]/;
const DOLLAR_TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;
const PARAMETER = /^\$(\d+)/;
/** Characters that may start a token other than plain text. */
const SPECIAL = /[-/'"$;]/;

/**
 * Splits SQL into spans without interpreting it: `-- …` comments, nested `/* … *\/` comments,
 * '…' strings (with E'…' backslash escapes), "…" identifiers (a doubled quote escapes in both),
 * $tag$…$tag$ bodies, positional parameters ($1), `;` and plain text between them. The one
 * lexer of this codebase: splitting migrations into statements and rewriting parameters for the
 * RDS Data API both read SQL through it, so both agree on where a string or comment ends.
 */
export function* sqlTokens(sql: string): Generator<SqlToken> {
  const n = sql.length;
  let i = 0;
  let textStart = 0;
  const flush = function* (end: number): Generator<SqlToken> {
    if (end > textStart) yield { kind: "text", text: sql.slice(textStart, end) };
  };
  while (i < n) {
    const ch = sql[i]!;
    if (!SPECIAL.test(ch)) {
      i++;
      continue;
    }
    const next = sql[i + 1];
    const prev = i > 0 ? sql[i - 1]! : "";
    let token: SqlToken | undefined;
    let stop = i;
    if (ch === "-" && next === "-") {
      const end = sql.indexOf("\n", i);
      stop = end === -1 ? n : end + 1;
      token = { kind: "line-comment", text: sql.slice(i, stop) };
    } else if (ch === "/" && next === "*") {
      // Postgres block comments nest.
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === "/" && sql[j + 1] === "*") {
          depth++;
          j += 2;
        } else if (sql[j] === "*" && sql[j + 1] === "/") {
          depth--;
          j += 2;
        } else j++;
      }
      stop = j;
      token = { kind: "block-comment", text: sql.slice(i, stop) };
    } else if (ch === "'" || ch === '"') {
      // In E'…' strings a backslash escapes the next character; everywhere a doubled quote does.
      const backslashEscapes = ch === "'" && (prev === "E" || prev === "e") && !IDENT_CHAR.test(sql[i - 2] ?? "");
      let j = i + 1;
      while (j < n) {
        if (backslashEscapes && sql[j] === "\\") {
          j += 2;
          continue;
        }
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      stop = Math.min(j + 1, n);
      token = { kind: "string", text: sql.slice(i, stop) };
    } else if (ch === "$" && !IDENT_CHAR.test(prev)) {
      const rest = sql.slice(i, i + 80);
      const param = PARAMETER.exec(rest);
      const tag = param ? null : DOLLAR_TAG.exec(rest);
      if (param) {
        stop = i + param[0].length;
        token = { kind: "parameter", text: param[0] };
      } else if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        stop = close === -1 ? n : close + tag[0].length;
        token = { kind: "dollar-quoted", text: sql.slice(i, stop) };
      }
    } else if (ch === ";") {
      stop = i + 1;
      token = { kind: "semicolon", text: ";" };
    }
    if (token === undefined) {
      i++;
      continue;
    }
    yield* flush(i);
    yield token;
    i = stop;
    textStart = stop;
  }
  yield* flush(n);
}
