import { Registry } from "prom-client";
import { ExpiryHeartbeat } from "../../src/jobs/expiry-heartbeat";

describe("ExpiryHeartbeat", () => {
  test("counts from the start until a run completes, then from the latest run known", () => {
    const h = new ExpiryHeartbeat(60, 1_000_000);
    expect(h.secondsSinceLastRun(1_030_000)).toBe(30);
    h.completed(1_020_000);
    expect(h.secondsSinceLastRun(1_030_000)).toBe(10);
    // An older run (read from Redis after a newer local one) does not move it back.
    h.completed(1_010_000);
    expect(h.lastRunAt).toBe(1_020_000);
  });

  test("readiness fails once no run completed for overdueSeconds", async () => {
    const h = new ExpiryHeartbeat(5, Date.now() - 10_000);
    await expect(h.check()).rejects.toThrow(/overdue: last completed run 10 s ago \(limit 5 s\)/);
    h.completed(Date.now());
    await expect(h.check()).resolves.toBeUndefined();
  });

  test("exports triggers_expiry_seconds_since_last_run, computed at each scrape", async () => {
    const registry = new Registry();
    const h = new ExpiryHeartbeat(600, Date.now() - 42_000);
    h.register(registry);
    expect(await registry.metrics()).toMatch(/^triggers_expiry_seconds_since_last_run 4[23](\.\d+)?$/m);
    h.completed(Date.now());
    expect(await registry.metrics()).toMatch(/^triggers_expiry_seconds_since_last_run 0(\.\d+)?$/m);
  });
});
