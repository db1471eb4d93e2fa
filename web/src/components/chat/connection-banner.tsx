// A strip under the room header while the connection is not online. Sends made meanwhile stay
// pending and go out when it is back.
import type { ConnState } from '../../lib/realtime-types';

export function ConnectionBanner({ state }: { state: ConnState }) {
  if (state === 'online') return null;
  if (state === 'offline') {
    return (
      <div className="banner banner--offline" role="status" data-testid="connection-banner" data-state={state}>
        You are offline. Messages you write will be sent when the connection is back.
      </div>
    );
  }
  return (
    <div className="banner banner--reconnecting" role="status" data-testid="connection-banner" data-state={state}>
      <span className="spinner" aria-hidden="true" />
      {state === 'connecting' ? 'Connecting…' : 'Connection lost. Reconnecting…'}
    </div>
  );
}
