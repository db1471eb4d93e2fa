// bots.ts - HTTP helpers for bot accounts (issue 19, docs/protocol.md "Bots"): a person creates
// bots, lists them, rotates a bot's token or webhook secret, changes its webhook, deletes it.
// In a browser the session cookie authenticates; elsewhere pass the person's token in
// `opts.token`. A bot's own token never manages bots (403).

import { call, type HttpOptions } from './http.js';
import type { User } from './types.js';

/** A bot as its owner sees it. */
export interface Bot extends User {
  bot: true;
  owner: User;
  /** Where messages that mention the bot (and DMs with it) are POSTed, or null. */
  webhookUrl: string | null;
  createdAt?: number;
}

/** `POST /api/bots`: the token and webhook secret are shown this once. */
export interface CreatedBot {
  bot: Bot;
  token: string;
  webhookSecret: string;
}

const path = (username: string) => `/api/bots/${encodeURIComponent(username)}`;

/** Creates a bot (username rules as signup; a taken one is `conflict`, as is a 21st bot). */
export async function createBot(
  args: { username: string; displayName?: string; webhookUrl?: string },
  opts: HttpOptions = {},
): Promise<CreatedBot> {
  return (await call<CreatedBot>('POST', '/api/bots', args, opts)).json!;
}

/** The caller's bots. */
export async function listBots(opts: HttpOptions = {}): Promise<Bot[]> {
  return (await call<{ bots: Bot[] }>('GET', '/api/bots', undefined, opts)).json!.bots;
}

/** A new token for the bot: every session of the old one ends (its sockets close with 4001). */
export async function rotateBotToken(username: string, opts: HttpOptions = {}): Promise<string> {
  return (await call<{ token: string }>('POST', `${path(username)}/token`, undefined, opts)).json!.token;
}

/** Changes the display name and/or the webhook URL (null removes it). */
export async function updateBot(
  username: string,
  args: { displayName?: string; webhookUrl?: string | null },
  opts: HttpOptions = {},
): Promise<Bot> {
  return (await call<{ bot: Bot }>('PATCH', path(username), args, opts)).json!.bot;
}

/** A new webhook signing secret. */
export async function rotateBotWebhookSecret(username: string, opts: HttpOptions = {}): Promise<string> {
  return (await call<{ webhookSecret: string }>('POST', `${path(username)}/webhook-secret`, undefined, opts)).json!
    .webhookSecret;
}

/** Deletes the bot: its sessions end, it leaves every chat; its username stays taken. */
export async function deleteBot(username: string, opts: HttpOptions = {}): Promise<void> {
  await call('DELETE', path(username), undefined, opts);
}
