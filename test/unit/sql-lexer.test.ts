import { sqlTokens } from "../../src/store/migrate/sql-lexer";
import { splitSqlStatements } from "../../src/store/migrate/split-sql";
import { toNamedParameters } from "../../src/store/migrate/data-api-executor";

const kinds = (sql: string) => [...sqlTokens(sql)].map((t) => [t.kind, t.text]);

describe("the SQL lexer", () => {
  test("concatenated tokens give back the script unchanged", () => {
    const sql = "SELECT E'a\\';b', 'it''s', \"we\"\"ird\", $f$ ; $f$, $1 /* a /* b */ ; */ -- c ;\n; x";
    expect([...sqlTokens(sql)].map((t) => t.text).join("")).toBe(sql);
  });

  test("an E'…' string ends at its unescaped quote, so its ; is not a statement end", () => {
    expect(kinds("SELECT E'a\\';b'; SELECT 2")).toEqual([
      ["text", "SELECT E"],
      ["string", "'a\\';b'"],
      ["semicolon", ";"],
      ["text", " SELECT 2"],
    ]);
    // A plain '…' string has no backslash escapes: 'a\' ends after the backslash.
    expect(kinds("SELECT 'a\\';")).toEqual([["text", "SELECT "], ["string", "'a\\'"], ["semicolon", ";"]]);
    // An identifier ending in e is not an E prefix.
    expect(kinds("SELECT type'a\\';")).toEqual([["text", "SELECT type"], ["string", "'a\\'"], ["semicolon", ";"]]);
  });

  test("block comments nest", () => {
    expect(kinds("/* /* */ ; */;")).toEqual([["block-comment", "/* /* */ ; */"], ["semicolon", ";"]]);
  });

  test("dollar quotes, parameters and line comments", () => {
    expect(kinds("$body$ ; $x$ ; $body$;")).toEqual([["dollar-quoted", "$body$ ; $x$ ; $body$"], ["semicolon", ";"]]);
    expect(kinds("a=$12 -- ;\n")).toEqual([["text", "a="], ["parameter", "$12"], ["text", " "], ["line-comment", "-- ;\n"]]);
    // $ inside an identifier is neither.
    expect(kinds("a$1$")).toEqual([["text", "a$1$"]]);
  });
});

describe("splitSqlStatements", () => {
  test("splits E'a\\';b' and nested comments where Postgres would", () => {
    expect(splitSqlStatements("INSERT INTO t VALUES (E'a\\';b'); SELECT 1")).toEqual(["INSERT INTO t VALUES (E'a\\';b')", "SELECT 1"]);
    expect(splitSqlStatements("SELECT 1 /* /* */ ; */; SELECT 2;")).toEqual(["SELECT 1", "SELECT 2"]);
    expect(splitSqlStatements("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; -- end;\n")).toEqual([
      "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
    ]);
  });
});

describe("toNamedParameters", () => {
  test("rewrites $n outside strings and comments only", () => {
    expect(toNamedParameters("SELECT $1, E'$2\\'', '$3', /* $4 /* */ $5 */ $6 -- $7\n, $$ $8 $$")).toBe(
      "SELECT :p1, E'$2\\'', '$3', /* $4 /* */ $5 */ :p6 -- $7\n, $$ $8 $$",
    );
  });
});
