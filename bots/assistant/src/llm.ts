// llm.ts - streams an answer from an OpenAI-compatible chat-completions endpoint (llama.cpp's
// server, Ollama, vLLM, or a hosted one): POST {model, messages, stream: true}, read the
// server-sent events `data: {"choices":[{"delta":{"content":"..."}}]}` up to `data: [DONE]`.
// A stall (no byte for stallMs), an HTTP error, an `error` object in the stream or a connection
// cut before [DONE] rejects with LlmError.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface LlmConfig {
  /** The chat-completions URL, e.g. http://127.0.0.1:8080/v1/chat/completions. */
  url: string;
  model: string;
  /** Bearer key, when the endpoint wants one. */
  key?: string;
  /** No byte for this long aborts the answer (default 30000 ms). */
  stallMs?: number;
  fetch?: typeof globalThis.fetch;
}

export class LlmError extends Error {
  override readonly name = 'LlmError';
}

/** Calls onToken for each piece of content as it arrives; resolves once [DONE] (or the end of a
 * complete stream) is read. `signal` cancels. */
export async function streamCompletion(
  cfg: LlmConfig,
  messages: ChatMessage[],
  onToken: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const stallMs = cfg.stallMs ?? 30000;
  const ctl = new AbortController();
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      ctl.abort();
    }, stallMs);
  };
  const onAbort = () => ctl.abort();
  signal?.addEventListener('abort', onAbort);
  arm();
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (cfg.key) headers.authorization = `Bearer ${cfg.key}`;
    const f = cfg.fetch ?? globalThis.fetch;
    let res: Response;
    try {
      res = await f(cfg.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: cfg.model, messages, stream: true }),
        signal: ctl.signal,
      });
    } catch (err) {
      throw new LlmError(stalled ? `no answer within ${stallMs} ms` : `cannot reach the model: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new LlmError(`the model answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let done = false;
    let finished = false; // a finish_reason was seen: a stream that then just ends is complete
    while (!done) {
      arm();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw new LlmError(stalled ? `the model stalled for ${stallMs} ms` : `the model's stream broke: ${(err as Error).message}`);
      }
      if (chunk.done) break;
      buf += dec.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (!line.startsWith('data:')) continue; // comments, event names, blank separators
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          break;
        }
        let obj: { choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[]; error?: { message?: string } | string };
        try {
          obj = JSON.parse(data);
        } catch {
          throw new LlmError('the model sent an unreadable event');
        }
        if (obj.error) {
          throw new LlmError(`the model failed: ${typeof obj.error === 'string' ? obj.error : (obj.error.message ?? 'error')}`);
        }
        if (obj.choices?.[0]?.finish_reason) finished = true;
        const content = obj.choices?.[0]?.delta?.content;
        if (typeof content === 'string' && content.length > 0) onToken(content);
      }
    }
    if (!done && !finished) throw new LlmError('the model stream ended before [DONE]');
    reader.cancel().catch(() => {});
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
