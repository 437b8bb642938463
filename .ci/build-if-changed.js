#!/usr/bin/env node
// `npm run build` (and `npm start`, which calls it): builds only what changed since the last build.
//   prisma generate  when prisma/schema.prisma, prisma.config.ts or the installed prisma changed,
//                    or src/generated/prisma is missing;
//   swc              when any file under src/, workers/ or bench/ (the generated client included),
//                    .swcrc or the installed @swc/core changed, or dist/src/cli/main.js is missing.
// "Changed" is make's notion: a file's path, size or mtime differs from what dist/.build-stamp.json
// recorded after the last successful build (so touching a file rebuilds; a clean git checkout does
// too, since git writes the files it changes). The stamp is written only after both steps succeed.
// Plain JavaScript with no dependencies, so it runs before anything is built.
// `--force` (or deleting dist/) rebuilds everything.
"use strict";
const { spawnSync } = require("node:child_process");
const { createHash } = require("node:crypto");
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } = require("node:fs");
const { join, relative } = require("node:path");

const ROOT = join(__dirname, "..");
const STAMP = join(ROOT, "dist", ".build-stamp.json");
const SWC_DIRS = ["src", "workers", "bench"];

/** Every file under `dir`, recursively, in a stable order. */
function walk(dir, out = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** A digest of each file's path, size and mtime (not its content: stat only, a few ms for the whole tree). */
function fingerprint(files, extra = "") {
  const h = createHash("sha256").update(extra);
  for (const f of files) {
    let line = `${relative(ROOT, f)}\0missing\n`;
    try {
      const s = statSync(f);
      line = `${relative(ROOT, f)}\0${s.size}\0${s.mtimeMs}\n`;
    } catch {
      // a missing input is part of the fingerprint too
    }
    h.update(line);
  }
  return h.digest("hex");
}

/** The installed version of a package, so an upgrade rebuilds. */
function versionOf(pkg) {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "none";
  }
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, "utf8"));
  } catch {
    return {};
  }
}

function run(what, cmd, args, env = process.env) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit", env });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    process.stderr.write(`build: ${what} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
  process.stderr.write(`build: ${what} (${Date.now() - started} ms)\n`);
}

const force = process.argv.includes("--force");
const stamp = force ? {} : readStamp();
const bin = (name) => join(ROOT, "node_modules", ".bin", name);

const prismaInputs = [join(ROOT, "prisma", "schema.prisma"), join(ROOT, "prisma.config.ts")];
const prisma = fingerprint(prismaInputs, `prisma ${versionOf("prisma")}\n`);
if (prisma !== stamp.prisma || !existsSync(join(ROOT, "src", "generated", "prisma"))) {
  // The schema engine is not needed to generate the client; Node stands in for its binary (as in `npm run prisma:generate`).
  run("prisma generate", bin("prisma"), ["generate", "--no-hints"], { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath });
}

// Computed after generate: a regenerated client is a changed input of swc.
const swcInputs = [...SWC_DIRS.flatMap((d) => walk(join(ROOT, d))), join(ROOT, ".swcrc")];
const swc = fingerprint(swcInputs, `swc ${versionOf("@swc/core")} ${versionOf("@swc/cli")}\n`);
if (swc !== stamp.swc || !existsSync(join(ROOT, "dist", "src", "cli", "main.js"))) {
  run("swc", bin("swc"), [...SWC_DIRS, "-d", "dist", "--copy-files", "--quiet"]);
}

if (prisma !== stamp.prisma || swc !== stamp.swc) {
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  const tmp = `${STAMP}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ prisma, swc }) + "\n");
  renameSync(tmp, STAMP);
}
