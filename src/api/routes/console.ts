import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import type { Context, Next } from "koa";
import { AppError, NotFoundError } from "../../errors";

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

const ALLOW = "GET, HEAD, OPTIONS";
const ASSET_PREFIX = "/console/assets/";

/**
 * GET /console (the page, never cached: it names the current assets) and GET /console/assets/{file}
 * (content-hashed names, cached for a year as immutable). Public: the page asks for an API key
 * and calls the API with it from the browser. Read from disk once, at first request.
 *
 * Static files, not API operations: served beside the route table (after its dispatcher, which
 * hands on the paths it does not know), absent from /openapi.json. HEAD answers the headers,
 * OPTIONS 204 with Allow, any other method 405 with Allow, as the table's paths do.
 */
export function consolePages() {
  let assets: Assets | null = null;
  const load = (): Assets => {
    if (assets) return assets;
    const dir = consoleDir();
    if (!dir) throw new NotFoundError("console (run npm run build)");
    return (assets = loadAssets(dir));
  };
  return function servePages(ctx: Context, next: Next): Promise<void> | void {
    const path = ctx.path;
    const isPage = path === "/console";
    const file = !isPage && path.startsWith(ASSET_PREFIX) && path.indexOf("/", ASSET_PREFIX.length) === -1 ? path.slice(ASSET_PREFIX.length) : null;
    if (!isPage && !file) return next();
    ctx.state.route = isPage ? "/console" : "/console/assets/:file";
    if (ctx.method === "OPTIONS") {
      ctx.status = 204;
      ctx.set("Allow", ALLOW);
      return;
    }
    if (ctx.method !== "GET" && ctx.method !== "HEAD") throw new AppError(405, "method_not_allowed", `${ctx.method} is not allowed on this path`, [], { Allow: ALLOW });
    if (isPage) {
      const a = load();
      secure(ctx);
      ctx.set("Cache-Control", "no-cache");
      ctx.type = "text/html; charset=utf-8";
      ctx.body = a.html;
      return;
    }
    const asset = load().files.get(file!);
    if (!asset) throw new NotFoundError("asset");
    secure(ctx);
    ctx.set("Cache-Control", "public, max-age=31536000, immutable");
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}
