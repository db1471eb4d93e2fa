// The app's realtime connection: the project's SDK (clients/js) behind the thin adapter in
// realtime-sdk.ts, so the rest of the app depends only on realtime-types.ts.
import { createSdkRealtime, type RealtimeOptions } from './realtime-sdk';
import type { Realtime } from './realtime-types';

export function createRealtime(opts: RealtimeOptions = {}): Realtime {
  return createSdkRealtime(opts);
}
