/**
 * Starts the fauxqs SQS emulator in this process, bound to 127.0.0.1 only (its own CLI binds
 * 0.0.0.0). fauxqs is an ES module: it is loaded with a real dynamic import (kept as-is by the
 * build), so plain Node (>= 20.19) runs it from our CommonJS output.
 */
export interface RunningEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startSqsEmulator(opts: { port?: number; host?: string; region: string }): Promise<RunningEmulator> {
  const { buildApp } = await import("fauxqs");
  const app = buildApp({ logger: false, host: opts.host ?? "127.0.0.1", defaultRegion: opts.region });
  const host = opts.host ?? "127.0.0.1";
  await app.listen({ host, port: opts.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  return {
    endpoint: `http://${host}:${port}`,
    stop: async () => {
      await app.close();
    },
  };
}
