// The realtime connection's state: connecting, online, reconnecting or offline.
import { useEffect, useState } from 'react';
import { useRealtime } from '../lib/session';
import type { ConnState } from '../lib/realtime-types';

export function useConnectionState(): ConnState {
  const rt = useRealtime();
  const [state, setState] = useState<ConnState>(rt.state);
  useEffect(() => {
    setState(rt.state);
    return rt.onState(setState);
  }, [rt]);
  return state;
}
