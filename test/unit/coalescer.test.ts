import { Coalescer, drainAll } from "../../src/coalescer";

/** A flush whose batches finish when the test says so. */
function controlledFlush() {
  const batches: number[][] = [];
  const finish: Array<() => void> = [];
  const flush = (items: number[]) => {
    batches.push(items);
    return new Promise<void>((resolve) => finish.push(resolve));
  };
  return { batches, finish, flush };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("Coalescer", () => {
  it("flushes what one turn added at the end of the turn while nothing is in flight", async () => {
    const f = controlledFlush();
    const c = new Coalescer<number>({ lingerMs: 1000, flush: f.flush });
    c.add(1);
    c.add(2);
    expect(f.batches).toEqual([]);
    await turn();
    expect(f.batches).toEqual([[1, 2]]);
    f.finish.forEach((r) => r());
    await c.drain();
  });

  it("a full batch goes at once; the item that did not fit starts the next", async () => {
    const f = controlledFlush();
    const c = new Coalescer<number>({ lingerMs: 1000, fits: (batch) => batch.length < 2, flush: f.flush });
    c.add(1);
    c.add(2);
    c.add(3);
    expect(f.batches).toEqual([[1, 2]]);
    await turn();
    await new Promise((r) => setTimeout(r, 5));
    f.finish.forEach((r) => r());
    await c.drain();
    expect(f.batches).toEqual([[1, 2], [3]]);
  });

  it("never has more than maxInFlight batches out; the rest wait for a slot, in order", async () => {
    const f = controlledFlush();
    const c = new Coalescer<number>({ lingerMs: 0, maxInFlight: 1, fits: (batch) => batch.length < 1, flush: f.flush });
    for (let i = 1; i <= 3; i++) c.add(i);
    await turn();
    expect(f.batches).toEqual([[1]]);
    expect(c.flying).toBe(1);
    expect([...c.pending()]).toEqual([2, 3]);
    f.finish[0]!();
    await turn();
    expect(f.batches).toEqual([[1], [2]]);
    const drained = c.drain();
    f.finish[1]!();
    await turn();
    f.finish[2]!();
    await drained;
    expect(f.batches).toEqual([[1], [2], [3]]);
  });

  it("while a batch is in flight, new items linger to share the next one", async () => {
    const f = controlledFlush();
    const c = new Coalescer<number>({ lingerMs: 20, flush: f.flush });
    c.add(1);
    await turn();
    c.add(2);
    await turn();
    c.add(3);
    await turn();
    expect(f.batches).toEqual([[1]]);
    await new Promise((r) => setTimeout(r, 40));
    expect(f.batches).toEqual([[1], [2, 3]]);
    f.finish.forEach((r) => r());
    await c.drain();
  });

  it("drain hands on everything pending and waits for every batch, a failed one included", async () => {
    const done: number[][] = [];
    const c = new Coalescer<number>({
      lingerMs: 1000,
      eager: false,
      flush: async (items) => {
        await new Promise((r) => setTimeout(r, 5));
        if (items.includes(99)) throw new Error("refused");
        done.push(items);
      },
    });
    c.add(99);
    c.flushNow();
    c.add(1);
    c.add(2);
    await drainAll([c]);
    expect(done).toEqual([[1, 2]]);
    expect(c.flying).toBe(0);
  });

  it("a synchronous flush has run when flushNow returns", () => {
    const out: string[] = [];
    const c = new Coalescer<string>({ lingerMs: 10_000, eager: false, unref: true, flush: (lines) => void out.push(lines.join("")) });
    c.add("a");
    c.add("b");
    c.flushNow();
    expect(out).toEqual(["ab"]);
  });
});
