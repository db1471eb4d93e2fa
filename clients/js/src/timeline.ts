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
//
// Streamed messages (issue 19) grow between entries: `msg.delta` events carry bytes appended at
// a byte `offset` (applyDelta), which is not a seq, so they never move asOf. A `stream.end`
// entry is a change like an edit: it sets the final body and state of the stream it names.
// Reads that overlap live deltas (history, the `sub` reply's `streams`) keep the longer text.

import type { Msg, MsgDeltaEvent, Reaction, StreamInfo } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The length of a string in UTF-8 bytes: the unit of stream offsets. */
export function utf8Length(s: string): number {
  return enc.encode(s).length;
}

/** A streamed item's length in bytes (its `stream.length`, else measured). */
function streamLength(m: Msg): number {
  return typeof m.stream?.length === 'number' ? m.stream.length : utf8Length(m.body);
}

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
    item.streaming = m.streaming ?? false;
    item.stream = m.stream ? { ...m.stream } : null;
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
    return { ...t, items: put(t.items, keepLonger(at >= 0 ? t.items[at]! : null, withDefaults(m, m.seq))), lastSeq };
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
    case 'stream.end': {
      // The final text, whatever deltas were seen (or missed) before.
      next.streaming = false;
      const state = m.state ?? 'done';
      if (!next.deleted) next.body = m.body;
      next.stream = { state, length: utf8Length(m.body) };
      break;
    }
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
      if (at >= 0 && out.items[at]!.asOf >= readAt) {
        // Deltas are no seqs: a read at the same seq may still carry more of an open stream.
        if (m.streaming) out = applyStreams(out, [m]);
        continue;
      }
      const item = keepLonger(at >= 0 ? out.items[at]! : null, withDefaults(m, readAt));
      out = { ...out, items: put(out.items, item), lastSeq: Math.max(out.lastSeq, m.seq) };
    } else {
      out = applyEntry(out, m);
    }
  }
  return { ...out, lastSeq: Math.max(out.lastSeq, asOf) };
}

/**
 * A read of a message still streaming may predate deltas already applied here (they were sent
 * before the reply): the longer text of the same open stream wins.
 */
function keepLonger(old: TimelineItem | null, item: TimelineItem): TimelineItem {
  if (!old || !old.streaming || !item.streaming || old.deleted) return item;
  const have = streamLength(old);
  if (have <= streamLength(item)) return item;
  return { ...item, body: old.body, stream: { ...(item.stream as StreamInfo), length: have } };
}

/** What applyDelta did: `gap` when bytes before the delta are missing (resync: re-`sub` or
 * msg.history, whose text so far replaces the item's). */
export interface DeltaResult {
  timeline: Timeline;
  applied: boolean;
  gap: boolean;
}

/**
 * Applies a `msg.delta` to the streaming message it names, by byte offset: when offset <=
 * length < offset + len(delta), the bytes beyond the current length are appended (a delta
 * already seen, in whole or in part, adds nothing twice); when offset > length bytes are missing:
 * nothing changes and `gap` is true. A delta for a message not in the timeline or no longer
 * streaming is ignored (the read that brings it, or the stream.end entry, has the text).
 */
export function applyDelta(t: Timeline, d: MsgDeltaEvent): DeltaResult {
  const at = find(t.items, d.seq);
  if (at < 0 || typeof d.delta !== 'string' || typeof d.offset !== 'number') return { timeline: t, applied: false, gap: false };
  const item = t.items[at]!;
  if (!item.streaming || item.deleted) return { timeline: t, applied: false, gap: false };
  const length = streamLength(item);
  if (d.offset > length) return { timeline: t, applied: false, gap: true };
  const bytes = enc.encode(d.delta);
  if (d.offset + bytes.length <= length) return { timeline: t, applied: false, gap: false };
  const tail = d.offset === length ? d.delta : dec.decode(bytes.subarray(length - d.offset));
  const next: TimelineItem = {
    ...item,
    body: item.body + tail,
    stream: { ...(item.stream ?? { state: 'streaming' }), length: d.offset + bytes.length },
  };
  const items = t.items.slice();
  items[at] = next;
  return { timeline: { ...t, items }, applied: true, gap: false };
}

/**
 * Applies a `sub` reply's `streams` snapshot (every message of the chat still streaming, with the
 * text so far, read after this socket was registered for deltas): items already in the timeline
 * take the snapshot's text when it is longer; a stream not in the timeline is added when it falls
 * within the items loaded (so the list gets no hole).
 */
export function applyStreams(t: Timeline, streams: Msg[] | undefined, asOf: number = t.lastSeq): Timeline {
  if (!Array.isArray(streams) || streams.length === 0) return t;
  let items = t.items;
  for (const m of streams) {
    if (!m || typeof m.seq !== 'number') continue;
    const at = find(items, m.seq);
    if (at >= 0) {
      const old = items[at]!;
      if (!old.streaming || old.deleted || streamLength(old) >= streamLength(m)) continue;
      items = items.slice();
      items[at] = { ...old, body: m.body, stream: m.stream ? { ...m.stream } : { state: 'streaming', length: utf8Length(m.body) } };
    } else if (items.length > 0 && m.seq > items[0]!.seq) {
      items = put(items, withDefaults(m, Math.max(asOf, m.seq)));
    }
  }
  return items === t.items ? t : { ...t, items };
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
