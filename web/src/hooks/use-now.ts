// useNow(): the current time, re-rendering every 30 s, so relative times ("last seen 5 min ago",
// list times) stay true on a page left open. One timer for the whole page, however many rows
// show a time: components subscribe to a shared clock, which runs only while someone listens.
import { useSyncExternalStore } from 'react';

export const CLOCK_TICK_MS = 30_000;

let now = Date.now();
let timer: ReturnType<typeof setInterval> | null = null;
const listeners = new Set<() => void>();

function subscribe(cb: () => void): () => void {
  listeners.add(cb);
  if (timer === null) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const l of [...listeners]) l();
    }, CLOCK_TICK_MS);
  }
  return () => {
    listeners.delete(cb);
    if (listeners.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}

export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now);
}
