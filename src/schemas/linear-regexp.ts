import { RE2JS } from "re2js";

/**
 * The engine every `pattern` and `patternProperties` of a tenant's schema runs on: RE2 (re2js, a
 * JavaScript port), whose matching time is linear in the input whatever the pattern, so no
 * registered pattern can hold an API process's event loop (ajv's documented answer to ReDoS).
 * Patterns are written in ECMAScript syntax; RE2 has no backreferences and no lookarounds (refused
 * at registration: pattern_cost), spells `\uXXXX` as `\x{XXXX}` (translated here), and its `\s`
 * is ASCII whitespace only.
 */
export function compileLinear(pattern: string): { test(s: string): boolean; toString(): string } {
  const re = RE2JS.compile(toRe2Syntax(pattern));
  // ajv keys its cache of compiled patterns by toString(): it must differ per pattern.
  return { test: (s: string) => re.matcher(s).find(), toString: () => `/${pattern}/` };
}

/** ajv's `code.regExp` option: the engine, and how standalone code would name it. */
export const linearRegExpEngine = Object.assign((pattern: string) => compileLinear(pattern), { code: 'require("re2js").RE2JS' });

/**
 * Why a pattern cannot run on the linear-time engine (a backreference, a lookaround, an escape
 * RE2 does not know), or null.
 */
export function linearSyntaxError(pattern: string): string | null {
  try {
    compileLinear(pattern);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message.slice(0, 200) : String(err);
  }
}

const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * ECMAScript's `\uXXXX` (a surrogate pair as one code point) and `\u{X…}` escapes as RE2's
 * `\x{…}`; everything else, other escapes included, unchanged.
 */
export function toRe2Syntax(pattern: string): string {
  if (!pattern.includes("\\u")) return pattern;
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = pattern[i + 1];
    if (next !== "u") {
      out += c + (next ?? "");
      i++;
      continue;
    }
    const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(pattern.slice(i + 2, i + 10));
    if (braced) {
      out += `\\x{${braced[1]}}`;
      i += 1 + braced[0].length;
      continue;
    }
    const hex = pattern.slice(i + 2, i + 6);
    if (!HEX4.test(hex)) {
      out += "\\u";
      i++;
      continue;
    }
    let code = parseInt(hex, 16);
    const low = pattern.slice(i + 8, i + 12);
    if (code >= 0xd800 && code <= 0xdbff && pattern.startsWith("\\u", i + 6) && HEX4.test(low) && parseInt(low, 16) >= 0xdc00 && parseInt(low, 16) <= 0xdfff) {
      code = 0x10000 + ((code - 0xd800) << 10) + (parseInt(low, 16) - 0xdc00);
      i += 6;
    }
    out += `\\x{${code.toString(16)}}`;
    i += 5;
  }
  return out;
}
