#!/usr/bin/env node
// bench/streams.mjs - streamed messages (issue 19) against plain messages, in one run on one server.
//
//   node bench/streams.mjs [--streams 100] [--viewers 10] [--rate 50] [--duration 10] [--warmup 2]
//                          [--url http://127.0.0.1:8080]   (else it starts PARLEY_BIN, default build/parley)
//
// --streams chats, each with one writer and --viewers viewers subscribed, plus one more viewer
// per chat that joins and subscribes halfway through the stream. Two phases, one after the other,
// same server, same sockets:
//   plain    every writer sends msg.send at --rate msgs/s (the chat scenario's shape: same chats,
//            same fan-out); latency = send to arrival at each viewer;
//   streams  every writer starts a stream and appends --rate deltas/s (one append on its way at a
//            time, later ones gathered into the next, as the SDK's StreamWriter does); latency =
//            append sent to the delta's arrival at each viewer (every delta carries its send time).
// Reported: per delivery p50/p99/max, the p99 over deltas of the slowest viewer ("to every
// viewer"), the streams/plain p99 ratio (issue 19 asks at most 1.5), and the integrity check:
// after msg.stream.end, the text each viewer folded from the deltas (the late ones from the sub
// reply's `streams` snapshot, then deltas by offset) equals the writer's text byte for byte, as
// does the stream.end entry's body. The client's own event-loop delay p99 is printed too: on a
// small machine the load generator shares the cores with the server.
//
// Why Node and not the C loadgen: its wire layer has no stream ops yet and the deltas need
// folding by byte offset and a late-joiner snapshot for the integrity check; this follows
// bench/search.mjs. The server runs with PARLEY_RATE_LIMITS=0.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ParleyServer } from '../tests/integration/lib/server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const STREAMS = Number(args.streams ?? 100);
const VIEWERS = Number(args.viewers ?? 10);
const RATE = Number(args.rate ?? 50);
const DURATION = Number(args.duration ?? 10);
const WARMUP = Number(args.warmup ?? 2);
const PASSWORD = 'bench-password-1';
const enc = new TextEncoder();
const dec = new TextDecoder();
const now = () => performance.now();

// ---- a lean socket: request/reply by id, events to one callback, nothing kept ----

class Sock {
  constructor(ws) {
    this.ws = ws;
    this.id = 1;
    this.pending = new Map();
    this.onEvent = null;
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString('utf8'));
      if (f.ev) this.onEvent?.(f);
      else if (typeof f.id === 'number') {
        const p = this.pending.get(f.id);
        if (!p) return;
        this.pending.delete(f.id);
        if (f.ok) p.resolve(f);
        else p.reject(Object.assign(new Error(`${p.op}: ${f.error?.code} ${f.error?.message}`), { error: f.error }));
      }
    });
  }
  static async open(wsUrl, token) {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    await new Promise((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
    });
    const s = new Sock(ws);
    s.user = (await s.req('auth', { token })).user;
    return s;
  }
  req(op, a = {}) {
    const id = this.id++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op });
      this.ws.send(JSON.stringify({ id, op, ...a }));
    });
  }
  close() {
    this.ws.terminate();
  }
}

async function signupAll(base, names, conc = 6) {
  const out = new Array(names.length);
  let next = 0;
  async function worker() {
    while (next < names.length) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${base}/api/signup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: names[i], password: PASSWORD }),
        });
        if (res.status === 201 || res.status === 200) {
          out[i] = (await res.json()).token;
          break;
        }
        if (res.status === 409) {
          const l = await fetch(`${base}/api/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username: names[i], password: PASSWORD }),
          });
          out[i] = (await l.json()).token;
          break;
        }
        if (attempt > 8) throw new Error(`signup ${names[i]}: HTTP ${res.status}`);
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  return out;
}

// ---- percentiles ----

class Samples {
  constructor() {
    this.a = new Float64Array(1 << 16);
    this.n = 0;
  }
  add(v) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  summary() {
    const s = this.a.subarray(0, this.n).slice().sort();
    const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
    return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.length ? s[s.length - 1] : NaN };
  }
}

const fmt = (v) => (Number.isFinite(v) ? v.toFixed(2) : '-');

// ---- main ----

let server = null;
let base = args.url;
if (!base) {
  process.env.PARLEY_BIN ??= path.join(ROOT, 'build/parley');
  server = new ParleyServer({ env: { PARLEY_RATE_LIMITS: '0', PARLEY_LOG_LEVEL: 'warn' } });
  await server.start();
  base = server.url;
}
const wsUrl = base.replace(/^http/, 'ws') + '/ws';
const tag = Math.random().toString(36).slice(2, 7);
const names = [];
for (let c = 0; c < STREAMS; c++) {
  names.push(`bw${tag}${c}`);
  for (let v = 0; v <= VIEWERS; v++) names.push(`bv${tag}${c}x${v}`);
}
let t0 = now();
const tokens = await signupAll(base, names);
console.error(`streams bench: ${names.length} accounts in ${((now() - t0) / 1000).toFixed(1)} s`);

// chats: a writer, VIEWERS viewers subscribed from the start, one late viewer
const chats = [];
let k = 0;
for (let c = 0; c < STREAMS; c++) {
  const writer = await Sock.open(wsUrl, tokens[k++]);
  const { chat } = await writer.req('chat.create', { title: `stream bench ${c}`, isPublic: true });
  const viewers = [];
  for (let v = 0; v < VIEWERS; v++) viewers.push(await Sock.open(wsUrl, tokens[k++]));
  const late = await Sock.open(wsUrl, tokens[k++]);
  await Promise.all(viewers.map((s) => s.req('chat.join', { chat: chat.slug })));
  await Promise.all(viewers.map((s) => s.req('sub', { chat: chat.slug })));
  chats.push({ slug: chat.slug, writer, viewers, late });
}
console.error(`streams bench: ${STREAMS} chats of ${VIEWERS} viewers (+1 late) ready`);

const loopDelay = monitorEventLoopDelay({ resolution: 10 });

// ---- phase 1: plain messages ----
const plain = new Samples();
let measuring = false;
for (const ch of chats) {
  for (const v of ch.viewers) {
    v.onEvent = (f) => {
      if (f.ev !== 'msg' || !measuring) return;
      const b = f.msg.body;
      if (b.startsWith('p:')) plain.add(now() - Number(b.slice(2, b.indexOf(';'))));
    };
  }
}
async function phase(seconds, tick) {
  const period = 1000 / RATE;
  const end = now() + seconds * 1000;
  const timers = chats.map((ch, i) =>
    setTimeout(() => {
      const iv = setInterval(() => tick(ch), period);
      ch.iv = iv;
    }, (i * period) / chats.length),
  );
  while (now() < end) await new Promise((r) => setTimeout(r, 50));
  timers.forEach(clearTimeout);
  for (const ch of chats) clearInterval(ch.iv);
}
const pad = 'x'.repeat(24);
let sent = 0;
loopDelay.enable();
setTimeout(() => (measuring = true), WARMUP * 1000);
await phase(WARMUP + DURATION, (ch) => {
  sent++;
  ch.writer.req('msg.send', { chat: ch.slug, body: `p:${now().toFixed(3)};${pad}` }).catch(() => {});
});
measuring = false;
const plainLoop = loopDelay.percentile(99) / 1e6;
loopDelay.reset();
await new Promise((r) => setTimeout(r, 500));
console.error(`streams bench: plain phase done (${sent} messages)`);

// ---- phase 2: streams ----
const delivery = new Samples();
const slowest = new Map(); // `${chat}:${marker}` -> slowest viewer's latency
const viewerText = new Map(); // Sock -> {bytes: Uint8Array parts, len}
const ended = new Map(); // chat -> stream.end body

function fold(v, f) {
  // the contract's rule: offset <= length < offset + len(delta): append the tail
  const st = viewerText.get(v);
  if (!st || f.seq !== st.seq) return;
  const d = enc.encode(f.delta);
  if (f.offset > st.len) {
    st.gaps++;
    return;
  }
  if (f.offset + d.length <= st.len) return;
  const tail = d.subarray(st.len - f.offset);
  st.parts.push(tail);
  st.len += tail.length;
  if (!measuring) return;
  const t = now();
  for (const m of dec.decode(tail).matchAll(/\|(\d+\.\d+):(\d+)/g)) {
    const lat = t - Number(m[1]);
    delivery.add(lat);
    const key = `${f.chat}:${m[2]}`;
    if ((slowest.get(key) ?? -1) < lat) slowest.set(key, lat);
  }
}

for (const ch of chats) {
  const r = await ch.writer.req('msg.stream.start', { chat: ch.slug, clientMsgId: `bench-${ch.slug}` });
  ch.seq = r.msg.seq;
  ch.offset = 0;
  ch.queue = '';
  ch.inflight = false;
  ch.text = '';
  ch.n = 0;
  for (const v of ch.viewers) {
    viewerText.set(v, { seq: ch.seq, parts: [], len: 0, gaps: 0 });
    v.onEvent = (f) => {
      if (f.ev === 'msg.delta') fold(v, f);
      else if (f.ev === 'msg' && f.msg.kind === 'stream.end' && f.msg.ref === ch.seq) ended.set(`${ch.slug}:${v.user.id}`, f.msg.body);
    };
  }
}
function pump(ch) {
  if (ch.inflight || ch.queue === '' || ch.closed) return;
  const delta = ch.queue;
  ch.queue = '';
  ch.inflight = true;
  const offset = ch.offset;
  ch.writer.req('msg.stream.append', { chat: ch.slug, seq: ch.seq, delta, offset }).then(
    (r) => {
      ch.offset = r.length;
      ch.inflight = false;
      pump(ch);
    },
    (err) => {
      ch.inflight = false;
      console.error(`append ${ch.slug}: ${err.message}`);
    },
  );
}
// Halfway, the late viewers join and subscribe: the snapshot, then deltas by offset.
const lateJoin = setTimeout(() => {
  for (const ch of chats) {
    const v = ch.late;
    const st = { seq: ch.seq, parts: [], len: 0, gaps: 0, buffered: [] };
    v.onEvent = (f) => {
      if (f.ev === 'msg.delta') {
        if (st.buffered) st.buffered.push(f);
        else fold(v, f);
      } else if (f.ev === 'msg' && f.msg.kind === 'stream.end' && f.msg.ref === ch.seq) ended.set(`${ch.slug}:${v.user.id}`, f.msg.body);
    };
    v.req('chat.join', { chat: ch.slug })
      .then(() => v.req('sub', { chat: ch.slug }))
      .then((r) => {
        const snap = (r.streams ?? []).find((m) => m.seq === ch.seq);
        if (snap) {
          const b = enc.encode(snap.body);
          st.parts.push(b);
          st.len = b.length;
        } else st.missing = true;
        viewerText.set(v, st);
        const held = st.buffered;
        st.buffered = null;
        for (const f of held) fold(v, f);
        ch.lateJoined = true;
      })
      .catch((err) => console.error(`late join ${ch.slug}: ${err.message}`));
  }
}, ((WARMUP + DURATION) * 1000) / 2);
setTimeout(() => (measuring = true), WARMUP * 1000);
await phase(WARMUP + DURATION, (ch) => {
  const piece = `|${now().toFixed(3)}:${ch.n++}${pad}`;
  ch.queue += piece;
  ch.text += piece;
  pump(ch);
});
measuring = false;
clearTimeout(lateJoin);
const streamLoop = loopDelay.percentile(99) / 1e6;
loopDelay.disable();
// drain and end every stream
for (const ch of chats) {
  while (ch.inflight || ch.queue !== '') {
    await new Promise((r) => setTimeout(r, 10));
    pump(ch);
  }
  ch.closed = true;
}
await Promise.all(chats.map((ch) => ch.writer.req('msg.stream.end', { chat: ch.slug, seq: ch.seq })));
const want = chats.reduce((n, ch) => n + ch.viewers.length + (ch.lateJoined ? 1 : 0), 0);
const deadline = now() + 10000;
while (ended.size < want && now() < deadline) await new Promise((r) => setTimeout(r, 20));

// ---- integrity ----
let ok = 0;
let bad = 0;
let lateOk = 0;
let lateBad = 0;
const problems = [];
for (const ch of chats) {
  const want = enc.encode(ch.text);
  for (const v of [...ch.viewers, ch.late]) {
    const st = viewerText.get(v);
    const late = v === ch.late;
    let good = false;
    if (st) {
      const got = Buffer.concat(st.parts.map((p) => Buffer.from(p)));
      const endBody = ended.get(`${ch.slug}:${v.user.id}`);
      good = got.equals(Buffer.from(want)) && st.gaps === 0 && endBody === ch.text && !st.missing;
      if (!good && problems.length < 5) {
        problems.push(`${ch.slug} ${late ? 'late ' : ''}viewer: ${got.length}/${want.length} bytes, gaps ${st.gaps}, end ${endBody === undefined ? 'missing' : endBody === ch.text ? 'ok' : 'differs'}${st.missing ? ', no snapshot' : ''}`);
      }
    } else if (problems.length < 5) problems.push(`${ch.slug} ${late ? 'late ' : ''}viewer: never subscribed`);
    if (late) good ? lateOk++ : lateBad++;
    else good ? ok++ : bad++;
  }
}

const p = plain.summary();
const d = delivery.summary();
const every = new Samples();
for (const v of slowest.values()) every.add(v);
const e = every.summary();
const bytes = chats.reduce((n, ch) => n + enc.encode(ch.text).length, 0);
console.log(`\n### streams (${STREAMS} streams x ${RATE} deltas/s, chats of ${VIEWERS} viewers + 1 joining halfway; ${DURATION} s measured after ${WARMUP} s warm-up)\n`);
console.log('| what | deliveries | p50 ms | p99 ms | max ms | client loop p99 ms |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
console.log(`| plain msg.send, send -> each viewer | ${p.n} | ${fmt(p.p50)} | ${fmt(p.p99)} | ${fmt(p.max)} | ${fmt(plainLoop)} |`);
console.log(`| stream delta, append -> each viewer | ${d.n} | ${fmt(d.p50)} | ${fmt(d.p99)} | ${fmt(d.max)} | ${fmt(streamLoop)} |`);
console.log(`| stream delta, append -> every viewer (slowest) | ${e.n} | ${fmt(e.p50)} | ${fmt(e.p99)} | ${fmt(e.max)} | |`);
console.log(`\ndelta p99 / plain p99 = ${fmt(d.p99 / p.p99)} (per delivery), ${fmt(e.p99 / p.p99)} (slowest viewer); target <= 1.5`);
console.log(`integrity: ${ok}/${ok + bad} viewers and ${lateOk}/${lateOk + lateBad} late joiners hold the writer's text byte for byte (${bytes} bytes streamed)`);
for (const pr of problems) console.log(`  ${pr}`);

for (const ch of chats) {
  ch.writer.close();
  ch.late.close();
  for (const v of ch.viewers) v.close();
}
if (server) await server.dispose?.();
process.exit(bad + lateBad === 0 ? 0 : 1);
