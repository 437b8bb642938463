import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { freePort } from "../../src/dev/local-services";
import { deadline } from "./deadlines";

/**
 * A Postgres server of the test's own (initdb into a temporary folder, 127.0.0.1 on a free port),
 * for what the shared server cannot show: it uses trust authentication and no TLS, so neither a
 * password change nor certificate checks could ever fail there. This one asks every TCP login for
 * a SCRAM password and serves TLS with a self-signed certificate naming only `localhost`.
 * Stopped (by PID) and removed by `stop()`.
 */
export interface PrivatePostgres {
  readonly port: number;
  /** Superuser URL (user postgres, password in it), plain TCP. */
  readonly adminUrl: string;
  /** The server's certificate (PEM file): a CA for `sslrootcert=`, valid for host name `localhost` only. */
  readonly certFile: string;
  stop(): Promise<void>;
}

function postgresBinDir(): string {
  try {
    return execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
  } catch {
    const root = "/usr/lib/postgresql";
    const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
    if (versions.length === 0) throw new Error("Postgres server binaries not found (pg_config or /usr/lib/postgresql/<v>/bin)");
    return join(root, versions[0]!, "bin");
  }
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` system user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), "triggers-pg-"));
  const own = (path: string) => {
    if (user) chownSync(path, user.uid, user.gid);
  };
  own(dir);
  const adminPassword = `admin-${process.pid}-${Date.now()}`;
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, `${adminPassword}\n`, { mode: 0o600 });
  own(pwfile);
  const data = join(dir, "data");
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"], {
    stdio: "ignore",
    ...(user ?? {}),
  });
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", keyFile, "-out", certFile], { stdio: "ignore" });
  chmodSync(keyFile, 0o600);
  own(keyFile);
  own(certFile);
  chmodSync(certFile, 0o644);
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", `ssl_cert_file=${certFile}`, "-c", `ssl_key_file=${keyFile}`, "-c", "fsync=off", "-c", "max_connections=30", "-c", "shared_buffers=16MB"],
    { stdio: ["ignore", "ignore", "pipe"], ...(user ?? {}) },
  );
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += String(c)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const adminUrl = `postgresql://postgres:${adminPassword}@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGINT"); // fast shutdown
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, deadline(10_000))))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const until = Date.now() + deadline(30_000);
  for (;;) {
    const c = new Client({ connectionString: adminUrl, connectionTimeoutMillis: deadline(2000) });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > until) {
        await stop();
        throw new Error(`private Postgres did not start: ${(err as Error).message}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { port, adminUrl, certFile, stop };
}

/** Runs statements on the private server as its superuser. */
export async function adminQuery(pg: PrivatePostgres, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: pg.adminUrl, connectionTimeoutMillis: deadline(5000) });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}
