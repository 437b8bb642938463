import { ExpiryPacer, type PacingAction } from "../../src/jobs/expiry-pacer";

const bounds = { minBatchSize: 100, maxBatchSize: 1000, minDuty: 0.05, maxDuty: 0.5, maxRestMs: 1000, minRestMs: 0, window: 2 };

/** Feeds `n` full batches of `rows` rows at `msPerRow`, with the given probe pair; returns the decisions. */
function feed(p: ExpiryPacer, n: number, msPerRow: number, probe: { busy: number; idle: number } = { busy: 1, idle: 1 }): PacingAction[] {
  const out: PacingAction[] = [];
  for (let i = 0; i < n; i++) {
    const a = p.observe({ rows: p.batchSize, ms: msPerRow * p.batchSize, probeBusyMs: probe.busy, probeIdleMs: probe.idle });
    if (a) out.push(a);
  }
  return out;
}

describe("ExpiryPacer", () => {
  it("starts at its smallest batch and least duty, and climbs to its largest while nothing suffers", () => {
    const p = new ExpiryPacer(bounds);
    expect(p.batchSize).toBe(100);
    expect(p.duty).toBe(0.05);
    const actions = feed(p, 40, 0.01);
    expect(actions.every((a) => a === "speed-up")).toBe(true);
    expect(p.batchSize).toBe(1000);
    expect(p.duty).toBeCloseTo(0.5);
  });

  it("backs off when its own batches get slower than the baseline, and recovers when they do not", () => {
    const p = new ExpiryPacer(bounds);
    feed(p, 40, 0.01);
    const slow = feed(p, 4, 0.05);
    expect(slow).toContain("back-off");
    expect(p.duty).toBeLessThan(0.5);
    expect(p.snapshot().lastBackoffReason).toBe("latency");
    const low = p.duty;
    feed(p, 8, 0.01);
    expect(p.duty).toBeGreaterThan(low);
  });

  it("backs off when the probe is slower during its batches than during its rests", () => {
    const p = new ExpiryPacer(bounds);
    feed(p, 40, 0.01);
    const actions = feed(p, 4, 0.01, { busy: 3, idle: 1 });
    expect(actions).toEqual(["back-off", "back-off"]);
    expect(p.snapshot().lastBackoffReason).toBe("interference");
    expect(p.duty).toBeCloseTo(0.125);
    expect(p.batchSize).toBe(250);
  });

  it("never leaves its bounds, however long the pressure lasts", () => {
    const p = new ExpiryPacer(bounds);
    feed(p, 200, 0.01, { busy: 50, idle: 1 });
    expect(p.duty).toBe(0.05);
    expect(p.batchSize).toBe(100);
    expect(p.restAfter(10)).toBeCloseTo(190);
    expect(p.restAfter(1000)).toBe(1000); // maxRestMs
  });

  it("a permanently slower database becomes the new baseline (the baseline drifts up)", () => {
    const p = new ExpiryPacer({ ...bounds, baselineDrift: 0.05 });
    feed(p, 10, 0.01);
    feed(p, 200, 0.03);
    expect(feed(p, 10, 0.03).every((a) => a === "speed-up")).toBe(true);
  });

  it("rejects nonsense bounds", () => {
    expect(() => new ExpiryPacer({ minDuty: 0.6, maxDuty: 0.5 })).toThrow(RangeError);
    expect(() => new ExpiryPacer({ interferenceTolerance: 1 })).toThrow(RangeError);
  });
});

describe("ExpiryPacer deadline floor", () => {
  it("never goes slower than the deadline needs, and says when even the largest duty is not enough", () => {
    const p = new ExpiryPacer(bounds);
    feed(p, 4, 0.01);
    // 0.01 ms/row measured; 10 rows/ms needed -> 0.1 duty, +25 % headroom.
    p.setRequiredRate(10);
    feed(p, 20, 0.01, { busy: 5, idle: 1 }); // constant back-offs
    expect(p.duty).toBeCloseTo(0.125, 2);
    expect(p.snapshot().deadlineAtRisk).toBe(false);
    p.setRequiredRate(1000);
    expect(p.duty).toBe(0.5);
    expect(p.snapshot().deadlineAtRisk).toBe(true);
    const before = p.batchSize;
    feed(p, 8, 0.01, { busy: 5, idle: 1 });
    expect(p.batchSize).toBeGreaterThanOrEqual(before); // at risk: batches grow, per-row cost is lowest there
    p.setRequiredRate(undefined);
    expect(p.duty).toBe(0.05);
  });
});
