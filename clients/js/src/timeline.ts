// timeline.ts - folds a chat's entries into the messages a user sees (issue 17). Pure: no I/O,
// no clock; every function returns a new Timeline and leaves its input untouched (React state).
//
// Every change of a chat is an entry of its one sequence: `text` messages and `notice`s are
// items of the timeline; `edit`, `delete` and `reaction` entries change the text message their
// `ref` names. The server sends text messages already folded (msg.history, the `sub` reply) as
// they are at the time of the read, and the entries live (`msg` events) or on resume (`sub
// {since}`). So that an entry is never applied twice (a replayed message already counts a
// reaction that follows it in the same replay), each item remembers `asOf`: the seq up to which
// its state is current; an entry applies only when its seq is newer.

import type { Msg, Reaction } from './types.js';

/** A text message or a notice, with the seq its folded state is current at. */
export interface TimelineItem extends Msg {
  asOf: number;
}

export interface Timeline {
  /** The reader's user id: decides `me` in reactions. */
  me: number | null;
  /** Text messages and notices, by seq. */
  items: TimelineItem[];
  /** The newest seq seen (of any kind). */
  lastSeq: number;
}

export function emptyTimeline(me: number | null = null): Timeline {
  return { me, items: [], lastSeq: 0 };
}

/** The entry's kind; a server that predates the message model sends none: "text". */
export function kindOf(m: Msg): NonNullable<Msg['kind']> {
  return m.kind ?? 'text';
}

/** True for the kinds that are items of a timeline (text, notice); false for changes. */
export function isItemKind(m: Msg): boolean {
  const k = kindOf(m);
  return k === 'text' || k === 'notice';
}

function find(items: TimelineItem[], seq: number): number {
  let lo = 0;
  let hi = items.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = items[mid]!.seq;
    if (s === seq) return mid;
    if (s < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return -(lo + 1);
}

function withDefaults(m: Msg, asOf: number): TimelineItem {
  const item: TimelineItem = { ...m, kind: kindOf(m), asOf };
  if (item.kind === 'text') {
    item.reactions = (m.reactions ?? []).map((r) => ({ ...r }));
    item.editedAt = m.editedAt ?? null;
    item.deleted = m.deleted ?? false;
    item.replyTo = m.replyTo ?? null;
    item.mentions = m.mentions ?? [];
  }
  return item;
}

function put(items: TimelineItem[], item: TimelineItem): TimelineItem[] {
  const at = find(items, item.seq);
  const out = items.slice();
  if (at >= 0) out[at] = item;
  else out.splice(-(at + 1), 0, item);
  return out;
}

function react(list: Reaction[], emoji: string, on: boolean, mine: boolean): Reaction[] {
  const out = list.map((r) => ({ ...r }));
  const r = out.find((x) => x.emoji === emoji);
  if (on) {
    if (r) {
      r.count += 1;
      r.me = r.me || mine;
    } else {
      out.push({ emoji, count: 1, me: mine });
    }
    return out;
  }
  if (!r) return out;
  r.count -= 1;
  if (mine) r.me = false;
  return r.count > 0 ? out : out.filter((x) => x !== r);
}

/**
 * Applies one entry as it arrives live (a `msg` event, in seq order). A text message or notice
 * becomes an item (replacing one with the same seq); an edit, delete or reaction changes its
 * target if the target is in the timeline and older than the entry (else it is ignored: the
 * server folds it into the target whenever the target is read).
 */
export function applyEntry(t: Timeline, m: Msg): Timeline {
  const lastSeq = Math.max(t.lastSeq, m.seq);
  if (isItemKind(m)) {
    const at = find(t.items, m.seq);
    if (at >= 0 && t.items[at]!.asOf >= m.seq) return { ...t, lastSeq };
    return { ...t, items: put(t.items, withDefaults(m, m.seq)), lastSeq };
  }
  const ref = m.ref ?? 0;
  const at = find(t.items, ref);
  if (at < 0) return { ...t, lastSeq };
  const target = t.items[at]!;
  if (target.asOf >= m.seq || kindOf(target) !== 'text') return { ...t, lastSeq };
  const next: TimelineItem = { ...target, asOf: m.seq };
  let items: TimelineItem[];
  switch (kindOf(m)) {
    case 'edit':
      if (next.deleted) break; // an edit that raced a deletion shows nothing
      next.body = m.body;
      next.editedAt = m.createdAt;
      break;
    case 'delete':
      next.body = '';
      next.deleted = true;
      next.reactions = [];
      next.mentions = [];
      break;
    case 'reaction':
      if (next.deleted || typeof m.emoji !== 'string') break;
      next.reactions = react(next.reactions ?? [], m.emoji, m.on === true, t.me !== null && m.author.id === t.me);
      break;
    default:
      break;
  }
  items = t.items.slice();
  items[at] = next;
  // Replies show the original's preview: a deletion empties it, an edit renews it.
  if (kindOf(m) === 'delete' || kindOf(m) === 'edit') {
    const preview = next.deleted ? '' : [...next.body].slice(0, 100).join('');
    items = items.map((it) =>
      it.replyTo && it.replyTo.seq === ref ? { ...it, replyTo: { ...it.replyTo, preview } } : it,
    );
  }
  return { ...t, items, lastSeq };
}

/**
 * Merges entries read from the server in one reply (msg.history, or a `sub` reply's msgs), with
 * text messages folded as of that read: `asOf` is the newest seq the read covered (a `sub`
 * reply's lastSeq; for msg.history, the newest seq seen live so far, t.lastSeq, as the read
 * happened after them). Changes among them apply only to items older than themselves that the
 * read did not fold (items kept from before).
 */
export function applyBatch(t: Timeline, msgs: Msg[], asOf: number = t.lastSeq): Timeline {
  let out = t;
  const sorted = [...msgs].sort((a, b) => a.seq - b.seq);
  const readAt = Math.max(asOf, sorted.length ? sorted[sorted.length - 1]!.seq : 0);
  for (const m of sorted) {
    if (isItemKind(m)) {
      const at = find(out.items, m.seq);
      if (at >= 0 && out.items[at]!.asOf >= readAt) continue;
      out = { ...out, items: put(out.items, withDefaults(m, readAt)), lastSeq: Math.max(out.lastSeq, m.seq) };
    } else {
      out = applyEntry(out, m);
    }
  }
  return { ...out, lastSeq: Math.max(out.lastSeq, asOf) };
}

/** Applies entries one by one, as applyEntry. */
export function applyEntries(t: Timeline, msgs: Msg[]): Timeline {
  let out = t;
  for (const m of msgs) out = applyEntry(out, m);
  return out;
}

/** The text messages of a timeline (notices left out). */
export function textMessages(t: Timeline): TimelineItem[] {
  return t.items.filter((m) => kindOf(m) === 'text');
}
