/**
 * Jest maps "@electric-sql/pglite" here (jest.config.js moduleNameMapper). PGlite loads its
 * WebAssembly and Node built-ins with dynamic import(), which Jest's module sandbox refuses without
 * --experimental-vm-modules. Loaded by Node's own loader (Module._load: Jest's `module` keeps the
 * native statics, while its createRequire would route back through the sandbox), PGlite runs as it
 * does under `npm start`. Every importer (src/store/database.ts and pglite-prisma-adapter) gets this
 * one native instance, so the adapter's `instanceof` checks on PGlite's error classes still hold.
 */
const Module = require("node:module");

const parent = { id: __filename, filename: __filename, paths: Module._nodeModulePaths(__dirname) };
module.exports = Module._load(Module._resolveFilename("@electric-sql/pglite", parent), null, false);
