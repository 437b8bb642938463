#!/usr/bin/env node
// Builds the console (src/console) into dist/console: one JavaScript and one CSS bundle with
// content-hashed names (served as immutable) and index.html naming them (served no-cache).
// esbuild bundles Preact and the console's TypeScript in ~100 ms, so this runs on every build.
"use strict";
const { mkdirSync, readFileSync, rmSync, writeFileSync } = require("node:fs");
const { basename, join } = require("node:path");
const esbuild = require("esbuild");

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "dist", "console");

async function main() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, "assets"), { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(__dirname, "main.ts"), style: join(__dirname, "style.css") },
    bundle: true,
    minify: true,
    sourcemap: false,
    format: "iife",
    target: ["chrome110", "firefox110", "safari16"],
    entryNames: "[name]-[hash]",
    outdir: join(OUT, "assets"),
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.startsWith("app-") && f.endsWith(".js"));
  const css = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
  if (!js || !css) throw new Error(`console build produced ${outputs.join(", ")}`);
  const html = readFileSync(join(__dirname, "index.html"), "utf8").replace("{{css}}", `/console/assets/${css}`).replace("{{js}}", `/console/assets/${js}`);
  writeFileSync(join(OUT, "index.html"), html);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
