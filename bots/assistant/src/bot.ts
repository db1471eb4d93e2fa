// bot.ts - the assistant: when a message mentions it, or any message in a DM with it, it reads the
// chat's recent messages, shows "thinking" (typing) until the model's first token, then streams
// the answer into the chat with a StreamWriter (which resumes across reconnects with the text
// intact) as a reply to the message. A failing model ends the stream with state "error".
//
// It learns about new messages from `chat.activity` (the server sends it to every participant's
// sockets for each new message, and the SDK makes it for the chats the bot has subscribed to;
// `mentioned` is true for a mention and for any message of a DM), so it needs no subscription
// per chat. Invitations are accepted as they arrive.

import type { ParleyClient } from '../../../clients/js/src/client.js';
import { StreamWriter } from '../../../clients/js/src/stream-writer.js';
import type { ChatActivityEvent, Msg, User } from '../../../clients/js/src/types.js';
import { streamCompletion, type ChatMessage, type LlmConfig } from './llm.js';

export interface AssistantOptions {
  llm: LlmConfig;
  /** How many recent messages go to the model as context (default 20). */
  contextMessages?: number;
  /** The system prompt. */
  systemPrompt?: string;
  /** Reported for every answer (logs, tests). */
  onAnswer?: (a: AnswerReport) => void;
}

export interface AnswerReport {
  chat: string;
  /** The message answered. */
  to: number;
  /** The stream's seq (null when it never started). */
  seq: number | null;
  text: string;
  state: 'done' | 'error';
  error?: string;
}

const DEFAULT_PROMPT =
  'You are a helpful assistant in a group chat. Messages from people are prefixed with their name. Answer briefly in plain text or markdown.';

/** The model's context: the chat's recent text messages, oldest first, the bot's own as assistant. */
export function toContext(msgs: Msg[], me: User, systemPrompt: string, max: number): ChatMessage[] {
  const texts = msgs.filter((m) => (m.kind ?? 'text') === 'text' && !m.deleted && m.body.trim() !== '');
  const out: ChatMessage[] = [{ role: 'system', content: systemPrompt }];
  for (const m of texts.slice(-max)) {
    if (m.author.id === me.id) out.push({ role: 'assistant', content: m.body });
    else out.push({ role: 'user', content: `${m.author.displayName || m.author.username}: ${m.body}` });
  }
  return out;
}

export class Assistant {
  readonly #client: ParleyClient;
  readonly #opts: AssistantOptions;
  readonly #seen = new Set<string>();
  readonly #offs: (() => void)[] = [];
  readonly #running = new Set<Promise<void>>();

  /** Keeps a reference to `client` (the caller connects and closes it). */
  constructor(client: ParleyClient, opts: AssistantOptions) {
    this.#client = client;
    this.#opts = opts;
  }

  /** Starts listening (call before or after client.connect()). */
  start(): void {
    this.#offs.push(
      this.#client.on('chat.activity', (ev) => this.#onActivity(ev)),
      this.#client.on('invite', (ev) => {
        if (ev.action === 'received') this.#client.acceptInvite(ev.invitation.id).catch(() => {});
      }),
    );
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
  }

  /** Resolves when every answer under way has ended. */
  async idle(): Promise<void> {
    while (this.#running.size) await Promise.allSettled([...this.#running]);
  }

  #onActivity(ev: ChatActivityEvent): void {
    const me = this.#client.user;
    const m = ev.lastMsg;
    if (!me || !m || !ev.mentioned || m.seq !== ev.seq) return;
    if ((m.kind ?? 'text') !== 'text' || m.author.id === me.id || m.author.bot || m.streaming) return;
    const key = `${ev.chat}:${m.seq}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#seen.size > 10000) this.#seen.delete(this.#seen.values().next().value!);
    const p = this.answer(ev.chat, m.seq).finally(() => this.#running.delete(p));
    this.#running.add(p);
  }

  /** Answers message `seq` of `chat` (public for tests and tools). */
  async answer(chat: string, seq: number): Promise<void> {
    const client = this.#client;
    const me = client.user!;
    const max = this.#opts.contextMessages ?? 20;
    // Typing is for subscribers: the first answer in a chat subscribes to it (kept, and resumed
    // after reconnects, by the client).
    await client.subscribe(chat).catch(() => {});
    client.setTyping(chat, true); // "thinking…" until the stream starts (which clears it)
    let writer: StreamWriter | null = null;
    const report = (state: 'done' | 'error', error?: string) =>
      this.#opts.onAnswer?.({ chat, to: seq, seq: writer?.seq ?? null, text: writer?.text ?? '', state, ...(error ? { error } : {}) });
    // The same clientMsgId for the same question: a restarted bot does not answer twice.
    const clientMsgId = `ans.${chat}.${seq}`.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(-64);
    const open = () => {
      if (!writer) {
        writer = new StreamWriter(client, chat, { clientMsgId, replyTo: seq });
        writer.start().catch(() => {});
      }
      return writer;
    };
    try {
      const hist = await client.history(chat, { before: seq + 1, limit: Math.min(200, max + 10) });
      const context = toContext(hist.msgs, me, this.#opts.systemPrompt ?? DEFAULT_PROMPT, max);
      await streamCompletion(this.#opts.llm, context, (token) => open().write(token));
      const w = open(); // an empty answer still ends as a message
      await w.end('done');
      report('done');
    } catch (err) {
      const why = (err as Error)?.message ?? String(err);
      try {
        const w = open();
        if (w.text === '') w.write(`Sorry, I could not answer: ${why}`);
        await w.end('error');
      } catch {
        // the stream could not be ended: the server ends it as "interrupted" after 30 s
      }
      client.setTyping(chat, false);
      report('error', why);
    }
  }
}
