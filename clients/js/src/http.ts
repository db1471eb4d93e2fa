// The HTTP side of the protocol: sign up, log in, log out, who am I. In a browser the server's
// session cookie (HttpOnly) is set by these responses and then rides on the WebSocket upgrade;
// other clients keep the returned token and pass it to ParleyClient.

import { ParleyError } from './errors.js';
import type { ErrorBody, User } from './types.js';

export interface HttpOptions {
  /** Server origin, e.g. `http://127.0.0.1:8080`. Default '' (same origin, browsers only). */
  baseUrl?: string;
  /** Bearer token (non-browser clients); browsers send the cookie instead. */
  token?: string;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
  signal?: AbortSignal;
}

export interface SessionResult {
  user: User;
  /** For non-browser clients; browsers get the HttpOnly cookie too. */
  token: string;
}

// `rawType`: body is raw bytes of that Content-Type (an avatar), not JSON.
export async function call<T>(
  method: string,
  path: string,
  body: unknown,
  opts: HttpOptions,
  rawType?: string,
): Promise<{ status: number; json: T | null }> {
  const f = opts.fetch ?? globalThis.fetch;
  if (typeof f !== 'function') throw new TypeError('no fetch implementation (pass options.fetch)');
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = rawType ?? 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) init.body = rawType !== undefined ? (body as BodyInit) : JSON.stringify(body);
  if (opts.signal) init.signal = opts.signal;
  let res: Response;
  try {
    res = await f(`${opts.baseUrl ?? ''}${path}`, init);
  } catch (err) {
    throw new ParleyError('unavailable', `network error: ${(err as Error)?.message ?? err}`, { op: `${method} ${path}` });
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok && !(res.status === 401 && path === '/api/me')) {
    const error = (json as { error?: ErrorBody } | null)?.error;
    const retry = res.headers.get('retry-after');
    const body: ErrorBody = error ?? { code: httpCode(res.status), message: `HTTP ${res.status}` };
    if (retry !== null && body.retryAfter === undefined && /^\d+$/.test(retry)) body.retryAfter = Number(retry) * 1000;
    throw ParleyError.fromBody(body, `${method} ${path}`);
  }
  return { status: res.status, json: json as T | null };
}

function httpCode(status: number): string {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 413:
      return 'too_large';
    case 429:
      return 'rate_limited';
    case 503:
      return 'unavailable';
    default:
      return 'internal';
  }
}

/** `POST /api/signup`. Rejects with ParleyError (`conflict` when the username is taken,
 * `rate_limited` with retryAfter over the network's signup budget, `unavailable` with retryAfter
 * when the server is too busy to hash a password). */
export async function signup(
  args: { username: string; password: string; displayName?: string },
  opts: HttpOptions = {},
): Promise<SessionResult> {
  return (await call<SessionResult>('POST', '/api/signup', args, opts)).json!;
}

/** `POST /api/login`. Rejects with ParleyError (`unauthorized`, `rate_limited` or `unavailable`
 * with retryAfter). */
export async function login(args: { username: string; password: string }, opts: HttpOptions = {}): Promise<SessionResult> {
  return (await call<SessionResult>('POST', '/api/login', args, opts)).json!;
}

/** `POST /api/logout`: ends the session; its WebSockets are closed with 4001. */
export async function logout(opts: HttpOptions = {}): Promise<void> {
  await call('POST', '/api/logout', undefined, opts);
}

/** `GET /api/me`: the signed-in user, or null when not signed in. */
export async function me(opts: HttpOptions = {}): Promise<User | null> {
  const { status, json } = await call<{ user: User }>('GET', '/api/me', undefined, opts);
  return status === 200 && json ? json.user : null;
}

/** `POST /api/password`: checks the current password (a wrong one is `unauthorized`, throttled
 * like a login: `rate_limited` with retryAfter) and stores the new one (8-256 bytes). Every other
 * session of the user ends (their sockets close with 4001); this one stays. */
export async function changePassword(args: { password: string; newPassword: string }, opts: HttpOptions = {}): Promise<void> {
  await call('POST', '/api/password', args, opts);
}

/** The picture types `uploadAvatar` accepts, and its size limit (the server's). */
export const AVATAR_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export const AVATAR_MAX_BYTES = 1024 * 1024;

/** `POST /api/avatar`: uploads a PNG, JPEG or WebP picture of at most 1 MiB (its type is the
 * blob's `type`, or `opts.type`). The server decodes it, scales it to fit 256x256 and stores it
 * again without metadata. Resolves with the user (its new `avatar`); rejects with `bad_request`
 * (not a picture of that type, over 4096x4096 pixels, another type) or `too_large`. */
export async function uploadAvatar(blob: Blob, opts: HttpOptions & { type?: string } = {}): Promise<User> {
  const type = opts.type ?? blob.type;
  const body = new Uint8Array(await blob.arrayBuffer()); // a copy: the fetch may outlive the blob
  return (await call<{ user: User }>('POST', '/api/avatar', body, opts, type)).json!.user;
}

/** `DELETE /api/avatar`: removes the user's picture. Resolves with the user (`avatar: null`). */
export async function deleteAvatar(opts: HttpOptions = {}): Promise<User> {
  return (await call<{ user: User }>('DELETE', '/api/avatar', undefined, opts)).json!.user;
}

/** The WebSocket URL of the server that served this page (`wss:` under https). */
export function wsUrlFor(loc: { protocol: string; host: string } = (globalThis as unknown as { location: Location }).location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}
