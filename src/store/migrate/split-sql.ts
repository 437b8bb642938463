import { sqlTokens } from "./sql-lexer";

/**
 * Splits a migration script into single statements at the `;` that sql-lexer.ts finds outside
 * strings, quoted identifiers, dollar-quoted bodies and comments (comments are dropped). Needed
 * because the RDS Data API runs one statement per call; the direct runner sends the same
 * statements so both paths apply a migration identically.
 */
export function splitSqlStatements(script: string): string[] {
  const statements: string[] = [];
  let current = "";
  for (const token of sqlTokens(script)) {
    if (token.kind === "semicolon") {
      pushStatement(statements, current);
      current = "";
    } else if (token.kind === "line-comment") current += "\n";
    else if (token.kind === "block-comment") current += " ";
    else current += token.text;
  }
  pushStatement(statements, current);
  return statements;
}

function pushStatement(into: string[], text: string): void {
  const trimmed = text.trim();
  if (trimmed.length > 0) into.push(trimmed);
}
