/** The ingest baseline: a bare Koa route that answers 202 without any work. Prints its port. */
import Koa from "koa";

const app = new Koa();
app.use((ctx) => {
  ctx.status = 202;
  ctx.body = { id: "evt_00000000000000000000000000", status: "accepted", received_at: new Date().toISOString() };
});
const server = app.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
