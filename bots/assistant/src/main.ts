// main.ts - runs the assistant. Settings (environment):
//   PARLEY_URL            the Parley server, e.g. http://127.0.0.1:8080 (its WebSocket is /ws)
//   PARLEY_BOT_TOKEN      the bot's token (POST /api/bots, or the web app's Bots page)
//   PARLEY_BOT_LLM_URL    an OpenAI-compatible chat-completions URL
//                         (llama.cpp: http://127.0.0.1:8080/v1/chat/completions,
//                          Ollama: http://127.0.0.1:11434/v1/chat/completions)
//   PARLEY_BOT_LLM_MODEL  the model name the endpoint expects
//   PARLEY_BOT_LLM_KEY    its key, if any
//   PARLEY_BOT_LLM_STALL_MS  no token for this long ends the answer with "error" (30000)
//   PARLEY_BOT_CONTEXT    recent messages given as context (20)
//   PARLEY_BOT_SYSTEM     the system prompt
import WebSocket from 'ws';
import { ParleyClient, type WebSocketLike } from '../../../clients/js/src/client.js';
import { Assistant } from './bot.js';

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`assistant: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

/** http(s)://host[:port] -> ws(s)://host[:port]/ws (a ws:// URL is kept as it is). */
export function wsUrl(base: string): string {
  const u = new URL(base);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return u.toString();
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/ws`;
}

const client = new ParleyClient({
  url: wsUrl(need('PARLEY_URL')),
  token: need('PARLEY_BOT_TOKEN'),
  WebSocket: WebSocket as unknown as new (url: string) => WebSocketLike,
});
const bot = new Assistant(client, {
  llm: {
    url: need('PARLEY_BOT_LLM_URL'),
    model: process.env.PARLEY_BOT_LLM_MODEL ?? 'default',
    ...(process.env.PARLEY_BOT_LLM_KEY ? { key: process.env.PARLEY_BOT_LLM_KEY } : {}),
    stallMs: Number(process.env.PARLEY_BOT_LLM_STALL_MS ?? 30000),
  },
  contextMessages: Number(process.env.PARLEY_BOT_CONTEXT ?? 20),
  ...(process.env.PARLEY_BOT_SYSTEM ? { systemPrompt: process.env.PARLEY_BOT_SYSTEM } : {}),
  onAnswer: (a) => console.log(`assistant: ${a.chat}#${a.to} -> #${a.seq} ${a.state}${a.error ? ` (${a.error})` : ''}`),
});
bot.start();
client.on('state', ({ state }) => console.log(`assistant: ${state}`));
client.on('unauthorized', () => {
  console.error('assistant: the token was refused (rotated or deleted?)');
  process.exit(1);
});
const user = await client.connect();
console.log(`assistant: signed in as ${user.username}`);
const stop = () => {
  bot.stop();
  client.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
