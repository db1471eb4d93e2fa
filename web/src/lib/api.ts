// REST calls to the Parley server: sign up, log in, log out, who am I. The session lives in the
// HttpOnly cookie the server sets, so the browser sends it by itself (same origin) and the
// WebSocket upgrade carries it too. The JSON `token` in the reply is ignored on purpose: a token
// readable by scripts is what the cookie exists to avoid.

export interface User {
  id: number;
  username: string;
  displayName: string;
}

// An error from the server in the protocol's shape ({code, message}), or from the network.
export class ApiError extends Error {
  code: string;
  status: number;
  retryAfter?: number;
  constructor(code: string, message: string, status = 0, retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError('unavailable', 'Cannot reach the server. Check your connection.');
  }
  if (res.status === 204) return undefined as T;
  let data: any = null;
  try {
    data = await res.json();
  } catch {
    // not JSON: fall through with the status
  }
  if (!res.ok) {
    const err = data?.error;
    const retry = Number(res.headers.get('Retry-After')) || undefined;
    throw new ApiError(
      err?.code || (res.status === 429 ? 'rate_limited' : 'internal'),
      err?.message || `HTTP ${res.status}`,
      res.status,
      retry,
    );
  }
  return data as T;
}

export function signup(username: string, password: string, displayName?: string) {
  return request<{ user: User }>('POST', '/api/signup', {
    username,
    password,
    ...(displayName ? { displayName } : {}),
  });
}

export function login(username: string, password: string) {
  return request<{ user: User }>('POST', '/api/login', { username, password });
}

export function logout() {
  return request<void>('POST', '/api/logout');
}

// The signed-in user, or null when there is no valid session.
export async function me(): Promise<User | null> {
  try {
    const r = await request<{ user: User }>('GET', '/api/me');
    return r.user;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}
