// The live chat list of a chat this client has open (issue 15, docs/protocol.md "The live chat
// list"). The server sends `chat.activity` for a new message only to the sockets that are NOT
// subscribed to the chat: a subscribed socket has the `msg` itself, and sending both doubled the
// frames of every delivery. So for a subscribed chat the client makes the event the server would
// have sent, from the msg and the counts the `sub` reply carries (`chat.unread`, `chat.mentions`
// as of `lastSeq`), and listeners see the same `chat.activity` stream either way.
//
// The server's own chat.activity (after a read, a stream's start or end, an edit that mentions
// you, or from another node of a cluster) is its word on the counts as of its `seq`: counts taken
// here from later messages are added on top, so events arriving in either order agree.
//
// Pure logic, no I/O: ParleyClient feeds it sub replies, msgs in seq order and server events.

import type { ChatActivityEvent, Msg } from './types.js';

/** The server's counts stop at 1000 (docs/protocol.md). */
export const COUNT_CAP = 1000;
/** Messages counted here kept for a server event that is older (bounded). */
const STEPS_MAX = 256;

interface Step {
  seq: number;
  unread: number;
  mentions: number;
}

interface ChatState {
  unread: number;
  mentions: number;
  /** The newest seq the counts include. */
  seq: number;
  dm: boolean;
  lastMsg: Msg | null;
  lastActivity: number;
  /** Messages counted here since the server's last event, oldest first. */
  steps: Step[];
}

/** What a sub reply tells: the caller's counts as of lastSeq (absent from an older server). */
export interface SubCounts {
  unread?: unknown;
  mentions?: unknown;
  kind?: unknown;
  lastActivity?: unknown;
}

export class ActivityCounter {
  readonly #chats = new Map<string, ChatState>();

  /** A sub reply for `chat`: counts as of `lastSeq`. Without counts the chat is not counted. */
  reset(chat: string, counts: SubCounts | undefined, lastSeq: number): void {
    if (!counts || typeof counts.unread !== 'number' || typeof counts.mentions !== 'number') {
      this.#chats.delete(chat);
      return;
    }
    this.#chats.set(chat, {
      unread: counts.unread,
      mentions: counts.mentions,
      seq: lastSeq,
      dm: counts.kind === 'dm',
      lastMsg: null,
      lastActivity: typeof counts.lastActivity === 'number' ? counts.lastActivity : 0,
      steps: [],
    });
  }

  /** The subscription to `chat` ended: its events come from the server again. */
  drop(chat: string): void {
    this.#chats.delete(chat);
  }

  /** Forgets everything (a new session). */
  clear(): void {
    this.#chats.clear();
  }

  /**
   * A message of a subscribed chat, in seq order, for user `me`: the chat.activity the server
   * would have sent, or null (not a chat counted here, already counted, or an entry that does
   * not move a chat list: edits, deletions, reactions, notices and streams have their own).
   */
  fromMsg(chat: string, msg: Msg, me: number | undefined): ChatActivityEvent | null {
    const st = this.#chats.get(chat);
    if (!st || me === undefined || msg.seq <= st.seq) return null;
    if ((msg.kind ?? 'text') !== 'text' || msg.streaming || msg.stream) return null;
    const step: Step = {
      seq: msg.seq,
      unread: msg.author?.id !== me ? 1 : 0,
      mentions: Array.isArray(msg.mentions) && msg.mentions.includes(me) ? 1 : 0,
    };
    st.unread = Math.min(COUNT_CAP, st.unread + step.unread);
    st.mentions = Math.min(COUNT_CAP, st.mentions + step.mentions);
    st.seq = msg.seq;
    st.lastMsg = msg;
    st.lastActivity = msg.createdAt;
    st.steps.push(step);
    if (st.steps.length > STEPS_MAX) st.steps.shift();
    return {
      chat,
      lastMsg: msg,
      unread: st.unread,
      mentions: st.mentions,
      lastActivity: msg.createdAt,
      seq: msg.seq,
      mentioned: st.dm || step.mentions === 1,
    };
  }

  /**
   * A chat.activity from the server: the event to pass on. For a chat counted here, its counts
   * plus those of later messages counted here; an event older than what was shown keeps the
   * newer message as lastMsg (and is not `mentioned`: that message was announced already).
   */
  fromServer(ev: ChatActivityEvent): ChatActivityEvent {
    const st = this.#chats.get(ev.chat);
    if (!st || typeof ev.seq !== 'number') return ev;
    st.steps = st.steps.filter((s) => s.seq > ev.seq);
    const later = st.steps.reduce((acc, s) => ({ u: acc.u + s.unread, m: acc.m + s.mentions }), { u: 0, m: 0 });
    st.unread = Math.min(COUNT_CAP, ev.unread + later.u);
    st.mentions = Math.min(COUNT_CAP, ev.mentions + later.m);
    if (ev.seq >= st.seq) {
      st.seq = ev.seq;
      st.lastMsg = ev.lastMsg;
      st.lastActivity = ev.lastActivity;
      return { ...ev, unread: st.unread, mentions: st.mentions };
    }
    return {
      chat: ev.chat,
      lastMsg: st.lastMsg ?? ev.lastMsg,
      unread: st.unread,
      mentions: st.mentions,
      lastActivity: Math.max(st.lastActivity, ev.lastActivity),
      seq: st.seq,
      mentioned: false,
    };
  }
}
