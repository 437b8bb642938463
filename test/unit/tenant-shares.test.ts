import { TenantShares } from "../../src/ingest/tenant-shares";

describe("TenantShares", () => {
  test("a tenant is admitted up to its share (one event always when it holds none); others are not affected", () => {
    const s = new TenantShares(100);
    expect(s.admit("b", 1, 0)).toBe(true);
    expect(s.admit("a", 150, 0)).toBe(true); // holds nothing: admitted even past the share
    expect(s.admit("a", 1, 0)).toBe(false);
    expect(s.admit("b", 60, 0)).toBe(true);
    expect(s.admit("b", 39, 0)).toBe(true);
    expect(s.admit("b", 1, 0)).toBe(false);
    s.release("a", 150);
    expect(s.admit("a", 50, 1)).toBe(true);
  });

  test("the delay grows with the time over the share, up to 900 s, and starts over after a calm spell", () => {
    const s = new TenantShares(10);
    const other = (at: number) => s.admit("other", 0, at);
    expect(s.admit("a", 10, 0)).toBe(true);
    other(1_000);
    expect(s.admit("a", 10, 1_000)).toBe(false);
    expect(s.delaySeconds("a", 1_000)).toBe(1);
    other(31_000);
    expect(s.admit("a", 10, 31_000)).toBe(false);
    expect(s.delaySeconds("a", 31_000)).toBe(30);
    // Holding nothing between commits does not end the episode...
    s.release("a", 10);
    expect(s.admit("a", 10, 32_000)).toBe(true);
    expect(s.admit("a", 10, 33_000)).toBe(false);
    expect(s.delaySeconds("a", 33_000)).toBe(32);
    expect(s.delaySeconds("a", 10_000_000)).toBe(900);
    // ...ten calm seconds do.
    s.release("a", 10);
    expect(s.admit("a", 10, 44_000)).toBe(true);
    other(44_500);
    expect(s.admit("a", 10, 44_500)).toBe(false);
    expect(s.delaySeconds("a", 44_500)).toBe(1);
  });

  test("a tenant alone (no other tenant seen for 10 s) is never refused", () => {
    const s = new TenantShares(10);
    expect(s.admit("solo", 10, 0)).toBe(true);
    expect(s.admit("solo", 10, 1)).toBe(true);
    expect(s.admit("other", 2, 2)).toBe(true);
    expect(s.admit("solo", 10, 3)).toBe(false);
    expect(s.admit("solo", 10, 20_000)).toBe(true);
  });
});
