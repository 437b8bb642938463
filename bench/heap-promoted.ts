/**
 * Preloaded into an API process (node --require), samples the allocations the scavenger does not
 * free: objects still live at the end and objects collected by full GCs, which is what a process
 * promotes. Starts BENCH_HEAP_START_MS (default 12 000: after bench:ingest's warm-up) after start
 * and writes `promoted-<pid>.heapprofile` (open it in Chrome DevTools) into BENCH_HEAP_DIR on SIGTERM.
 * Only processes started with the `api` command are sampled. For example:
 *   BENCH_HEAP_DIR=/tmp/heap BENCH_ROUNDS=1 \
 *   BENCH_NODE_OPTIONS="--max-semi-space-size=32 --require=$PWD/dist/bench/heap-promoted.js" npm run bench:ingest
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.BENCH_HEAP_DIR;
if (dir && process.argv.includes("api")) {
  const session = new Session();
  session.connect();
  setTimeout(() => {
    session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
    process.prependListener("SIGTERM", () => {
      session.post("HeapProfiler.stopSampling", (err, result) => {
        if (!err) writeFileSync(join(dir, `promoted-${process.pid}.heapprofile`), JSON.stringify(result.profile));
      });
    });
  }, Number(process.env.BENCH_HEAP_START_MS ?? 12_000)).unref();
}
