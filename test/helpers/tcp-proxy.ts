import { createServer, connect, type Server, type Socket } from "node:net";

/** How `freeze()` treats the connections open when it starts. */
export type FreezeMode =
  /** Every open connection stops answering mid-stream (bytes are held, not lost). */
  | "mid-connection"
  /** Open connections are dropped, so clients reconnect into a proxy that accepts and never answers. */
  | "accept";

/**
 * A TCP proxy on 127.0.0.1 under a test's control, placed between a process and a dependency
 * (Postgres, Redis, the SQS emulator): `cut()` drops every connection and refuses new ones,
 * `restore()` lets traffic through again, `delay(ms)` holds each chunk back, and `freeze(mode)`
 * makes the dependency hang: connections are accepted but nothing is answered until `thaw()`,
 * which delivers what was held, in order, as a healed network would. No root, and the shared
 * server behind it is never touched.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private down = false;
  private latencyMs = 0;
  private frozen = false;
  /** Per-direction flushers of the bytes held while frozen. */
  private readonly held = new Set<() => void>();
  /** The connections open now, each with the switch that silences it for good (`thaw({ strand: true })`). */
  private readonly links = new Set<{ stranded: boolean }>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static forUrl(url: string): TcpProxy {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol.startsWith("redis") ? 6379 : u.protocol.startsWith("postgres") ? 5432 : 80));
    return new TcpProxy(u.hostname, port);
  }

  /** The same URL with host:port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
  }

  async start(): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this;
  }

  private accept(client: Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const link = { stranded: false };
    this.links.add(link);
    const pipe = (from: Socket, to: Socket) => {
      let queue: Buffer[] = [];
      const flush = () => {
        this.held.delete(flush);
        const chunks = queue;
        queue = [];
        if (link.stranded) return;
        for (const c of chunks) if (!to.destroyed) to.write(c);
      };
      from.on("data", (chunk: Buffer) => {
        if (link.stranded) return;
        if (this.frozen || queue.length > 0) {
          queue.push(chunk);
          this.held.add(flush);
        } else if (this.latencyMs > 0) {
          from.pause();
          setTimeout(() => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          }, this.latencyMs);
        } else if (!to.write(chunk)) {
          from.pause();
          to.once("drain", () => from.resume());
        }
      });
    };
    pipe(client, upstream);
    pipe(upstream, client);
    const close = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  }

  /** Drops every open connection and refuses new ones until restore(). */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Drops every open connection with a TCP reset (RST), as a peer that crashed or a middlebox that gave up would; new ones still pass. */
  reset(): void {
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
  }

  /**
   * The dependency hangs: new connections are accepted and never answered; open ones stop
   * answering ("mid-connection") or are dropped first ("accept").
   */
  freeze(mode: FreezeMode): void {
    if (mode === "accept") {
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    }
    this.frozen = true;
  }

  /**
   * Ends a freeze: held bytes are delivered in order and traffic flows again. With `strand`, the
   * connections open now stay silent for good instead (their held bytes are dropped, later ones
   * too, and nothing closes them), as after a failover or a middlebox that forgot them: only
   * connections opened after the thaw reach the dependency.
   */
  thaw(opts: { strand?: boolean } = {}): void {
    if (opts.strand) for (const link of this.links) link.stranded = true;
    this.frozen = false;
    for (const flush of [...this.held]) flush();
  }

  delay(ms: number): void {
    this.latencyMs = ms;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
