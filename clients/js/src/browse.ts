// Paging through chat.browse: the server orders the directory by (lastActivity, chat) and pages on
// from the previous page's last chat, so chats that share a lastActivity are never skipped or
// listed twice (docs/protocol.md, chat.browse).
import type { ChatBrowseArgs, ChatBrowseResult } from './types.js';

/** The arguments of the page after `result` (asked with `args`), or null when it was the last. */
export function nextBrowseArgs(args: ChatBrowseArgs, result: ChatBrowseResult): ChatBrowseArgs | null {
  const last = result.chats[result.chats.length - 1];
  if (!result.hasMore || last === undefined) return null;
  return { ...args, before: last.lastActivity, chat: last.slug };
}
