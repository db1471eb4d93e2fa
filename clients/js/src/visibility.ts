// Page visibility and user input -> the `presence` state this socket reports:
//   hidden  the page is not visible (document.visibilityState === 'hidden');
//   active  visible, with keyboard or pointer input in the last 5 minutes (becoming visible
//           counts as input: the user just switched to the page);
//   idle    visible, but no input for 5 minutes.
// Only changes are reported. The client re-sends the last state after every reconnect.

import type { ClientPresenceState } from './types.js';
import type { Timers } from './client.js';

type Listener = (ev: unknown) => void;

/** The part of `document` used. */
export interface DocumentLike {
  readonly visibilityState: string;
  addEventListener(type: string, listener: Listener, options?: unknown): void;
  removeEventListener(type: string, listener: Listener, options?: unknown): void;
}

/** The part of `window` used. */
export interface WindowLike {
  addEventListener(type: string, listener: Listener, options?: unknown): void;
  removeEventListener(type: string, listener: Listener, options?: unknown): void;
}

export interface VisibilityOptions {
  /** No input for this long makes a visible page idle, ms (default 300000 = 5 min). */
  idleMs?: number;
  /** Window events that count as input (default keydown, pointerdown, pointermove, wheel, touchstart, focus). */
  inputEvents?: string[];
  timers?: Timers;
  now?: () => number;
}

export const DEFAULT_INPUT_EVENTS = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart', 'focus'];

/**
 * Calls `report(state)` now with the page's state and again on every change. Returns a
 * function that removes the listeners and the timer.
 */
export function attachVisibility(
  report: (state: ClientPresenceState) => void,
  doc: DocumentLike,
  win: WindowLike,
  opts: VisibilityOptions = {},
): () => void {
  const idleMs = opts.idleMs ?? 300000;
  const now = opts.now ?? Date.now;
  const timers: Timers = opts.timers ?? {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  };
  const inputEvents = opts.inputEvents ?? DEFAULT_INPUT_EVENTS;

  let lastInput = now();
  let timer: unknown = null;
  let current: ClientPresenceState | null = null;
  let detached = false;

  const hidden = () => doc.visibilityState === 'hidden';
  const set = (state: ClientPresenceState) => {
    if (state === current) return;
    current = state;
    report(state);
  };
  const arm = (ms: number) => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = timers.setTimeout(onTimer, ms);
  };
  const onTimer = () => {
    timer = null;
    if (detached || hidden()) return; // becoming visible arms it again
    const quiet = now() - lastInput;
    if (quiet >= idleMs) set('idle');
    else arm(idleMs - quiet);
  };
  const onInput = () => {
    lastInput = now();
    if (hidden()) return;
    set('active');
    if (timer === null) arm(idleMs);
  };
  const onVisibility = () => {
    if (hidden()) {
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      set('hidden');
    } else {
      onInput();
    }
  };

  doc.addEventListener('visibilitychange', onVisibility);
  for (const t of inputEvents) win.addEventListener(t, onInput, { passive: true, capture: true });
  if (hidden()) set('hidden');
  else {
    set('active');
    arm(idleMs);
  }

  return () => {
    if (detached) return;
    detached = true;
    doc.removeEventListener('visibilitychange', onVisibility);
    for (const t of inputEvents) win.removeEventListener(t, onInput, { capture: true });
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
}
