import Router from "@koa/router";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import type { Context } from "koa";
import { NotFoundError } from "../../errors";

/**
 * The console's Content-Security-Policy: everything from this origin only, no inline script or
 * style, no eval, no frames, no plugins. Payloads are rendered as text nodes, so a hostile one
 * cannot run even where a bug let it reach the DOM as markup.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml" };

/** Where `npm run build` put the console (dist/console): from dist/src/api/routes or from src/api/routes under ts. */
function consoleDir(): string | null {
  for (const dir of [resolve(__dirname, "../../../console"), resolve(__dirname, "../../../dist/console")]) {
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  return null;
}

interface Assets {
  readonly html: Buffer;
  readonly files: ReadonlyMap<string, { body: Buffer; type: string }>;
}

function loadAssets(dir: string): Assets {
  const files = new Map<string, { body: Buffer; type: string }>();
  const assets = join(dir, "assets");
  for (const name of existsSync(assets) ? readdirSync(assets) : []) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(assets, name)), type });
  }
  return { html: readFileSync(join(dir, "index.html")), files };
}

function secure(ctx: Context): void {
  ctx.set("Content-Security-Policy", CONSOLE_CSP);
  ctx.set("X-Content-Type-Options", "nosniff");
  ctx.set("Referrer-Policy", "no-referrer");
  ctx.set("X-Frame-Options", "DENY");
}

/**
 * GET /console (the page, never cached: it names the current assets) and GET /console/assets/{file}
 * (content-hashed names, cached for a year as immutable). Public: the page asks for an API key
 * and calls the API with it from the browser. Read from disk once, at first request.
 */
export function consoleRoutes(): Router {
  const router = new Router();
  let assets: Assets | null = null;
  const load = (): Assets => {
    if (assets) return assets;
    const dir = consoleDir();
    if (!dir) throw new NotFoundError("console (run npm run build)");
    return (assets = loadAssets(dir));
  };
  router.get("/console", (ctx) => {
    const a = load();
    secure(ctx);
    ctx.set("Cache-Control", "no-cache");
    ctx.type = "text/html; charset=utf-8";
    ctx.body = a.html;
  });
  router.get("/console/assets/:file", (ctx) => {
    const file = load().files.get(String(ctx.params.file));
    if (!file) throw new NotFoundError("asset");
    secure(ctx);
    ctx.set("Cache-Control", "public, max-age=31536000, immutable");
    ctx.type = file.type;
    ctx.body = file.body;
  });
  return router;
}
