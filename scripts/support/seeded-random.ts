// What the crash harness and the load test share: a seeded generator, so a run prints its seed
// and `--seed N` replays it, and a plain sleep.

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pause = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
