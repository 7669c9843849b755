// The load generator: one Node process that drives thousands of clients over
// the real wire protocol and measures what the clients see. Invoked by
// `python -m loadtests` (loadtests/runner.py) as
//     node loadtests/gen/swarm.mjs PLAN.json
// PLAN names the stack ('bare' | 'sio' | 'chat'), the server's URL, origin and
// pid (sampled from /proc), one scenario and its parameters. Progress goes to
// stderr; the result is one JSON object on stdout.
//
// Every message is identified by (sender member, seq): the receiver checks that
// seqs from each sender arrive exactly once and in order, and at the end each
// receiver's last seq is compared with what the server acknowledged to the
// sender. lost / duplicated / out_of_order must all be 0.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BareConn, SioConn, login } from './conn.mjs';
import { Histogram } from './hist.mjs';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const STACK = plan.stack;
const BASE = plan.base;
const ORIGIN = plan.origin || BASE;
const DEFLATE = plan.deflate !== false;
let deliveredEvery = plan.delivered_every || 1; // boxes per cumulative `delivered`
const CONNECT_CONCURRENCY = plan.connect_concurrency || 100;
// Several nodes (profile multinode, loadtests/multinode.py): every node's URL
// and pid, n1 first; PLACEMENT says which node each client connects to:
//   ''          every client on n1 (the other nodes only apply the log);
//   'cross'     counsellor j on node j mod N, each youth on another node than
//               the counsellor who claims her (relay: explicit claims);
//   'alternate' counsellors and youths alternately over the nodes (the peak:
//               who claims whom is the scenario's, so about 1 - 1/N cross).
const NODES = plan.nodes || [{ name: 'n1', base: BASE, pid: plan.server_pid }];
const PLACEMENT = plan.placement || '';
const spread = (i) => (PLACEMENT ? i % NODES.length : 0);
// Every server-side process (nodes, Redis): CPU seconds over each window.
const PIDS = plan.pids || [{ name: 'server', pid: plan.server_pid }];
const LOGIN_CONCURRENCY = plan.login_concurrency || 4;

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[swarm ${STACK}] ${a.join(' ')}\n`);
const b64url = (buf) => buf.toString('base64url');
const randHex = () => crypto.randomBytes(16).toString('hex');
const kxPk = () => b64url(crypto.randomBytes(32));
const expRand = (mean) => -Math.log(1 - Math.random()) * mean;
const uniform = (a, b) => a + Math.random() * (b - a);

// ---------------------------------------------------------------- counters

const stats = { framesIn: 0, framesOut: 0, bytesIn: 0, wsErrors: 0 };
const counters = {
  sent: 0, // sends the server accepted (acked, or shown in a resume roster)
  received: 0, // boxes delivered to a client for the first time, in order
  duplicated: 0, // a box seen twice that the server had been told was delivered
  redelivered: 0, // a box seen again after a reconnect, before our `delivered` reached the server (expected; dropped by the replay check as the protocol says)
  out_of_order: 0, // a seq that skipped ahead of the last one received
  lost: 0, // acknowledged to the sender, never received (counted at the end)
  undelivered_at_cutoff: 0, // still queued in an overloaded server when the run had to stop
  dropped_by_end: 0, // in flight when its conversation ended (buffers dropped by design)
  arrived_late_dropped: 0, // arrived after a newer box from the same sender (see onBox)
  stranded_by_server_disconnect: 0, // buffered for a client the server disconnected
  never_arrived_in_gap: 0, // skipped by a newer box and never seen at all
  stray: 0, // a box for a member this generator does not know
  late_sends: 0, // a send was due while the previous one was still unacknowledged
  unexpected_disconnects: 0,
  connect_failures: 0,
  typing_in: 0,
  youth_queue_events: 0,
  youth_queue_bytes: 0,
  staff_queue_events: 0,
  staff_queue_bytes: 0,
  staff_queue_snapshots: 0, // whole views (queue); the rest were changes (queue_delta)
  staff_queue_resyncs: 0, // queue_sync calls after a change that did not fit the view held
  claims_placed: 0, // claims whose youth this generator holds (several nodes)
  claims_cross_node: 0, // ... of which the youth is on another node than the counsellor
};
const errors = {}; // unexpected error codes -> count
const refusals = {}; // expected refusals (already_claimed, queue_empty, at_capacity) -> count
const EXPECTED = new Set(['already_claimed', 'queue_empty', 'at_capacity']);
// A claim from a snapshot up to 1 s old can name a youth who has since given
// up waiting (the swarm's patience model): the server answers
// unknown_conversation, as the protocol says, and nothing changes. In the
// peak scenario both sides also end conversations on their own clocks, so a
// send, typing, end or leave can cross the other side's end or a youth giving
// up just as a counsellor claims: the same answer, counted apart. No other
// scenario ends conversations, so there it stays an error.
const GONE = new Set(['unknown_conversation']);
const EXPECTED_FOR = plan.scenario === 'peak'
  ? { claim: GONE, send: GONE, typing: GONE, end: GONE, leave: GONE, delivered: GONE }
  : { claim: GONE };
function noteReply(what, r) {
  if (r && r.ok) return true;
  const code = `${what}:${(r && r.error) || 'no_reply'}`;
  if (r && (EXPECTED.has(r.error) || EXPECTED_FOR[what]?.has(r.error))) {
    refusals[code] = (refusals[code] || 0) + 1;
  }
  else errors[code] = (errors[code] || 0) + 1;
  return false;
}
function noteError(code) { errors[code] = (errors[code] || 0) + 1; }

// ---------------------------------------------------------------- latency windows

const relayAll = new Histogram();
let relayWindow = new Histogram();
let windowOpen = false;
let windowStart = 0;
const claimHist = new Histogram();
const startHist = new Histogram();
const sendAckHist = new Histogram();
let windowReceived = 0;

let windowCpu = {};
function openWindow() { relayWindow = new Histogram(); windowReceived = 0; windowCpu = cpuByProcess(); windowStart = now(); windowOpen = true; }
function closeWindow() {
  windowOpen = false;
  const secs = (now() - windowStart) / 1000;
  const cpu1 = cpuByProcess();
  // CPU seconds each server-side process spent in the window (null: it died)
  const cpu = {};
  for (const [k, v] of Object.entries(cpu1)) cpu[k] = v === null || windowCpu[k] === null ? null : Math.round((v - windowCpu[k]) * 100) / 100;
  return { hist: relayWindow, secs, received: windowReceived, cpu };
}

// ---------------------------------------------------------------- /proc sampling

const TICKS = 100; // USER_HZ on Linux
function readProc(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(f[11]) + Number(f[12])) / TICKS; // utime + stime, seconds
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpu, rssKb: m ? Number(m[1]) : 0 };
  } catch {
    return { cpu: 0, rssKb: 0 };
  }
}
// Per-core busy fraction from /proc/stat: shows whether the server's core (and
// the generator's) was really saturated, softirq time included.
function readCores() {
  const out = [];
  try {
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+) (.*)$/.exec(line);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      const idle = v[3] + v[4];
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      out[Number(m[1])] = { idle, total };
    }
  } catch { /* not Linux */ }
  return out;
}
const timeline = [];
const t0 = now();
let lastSample = null;
let connCount = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
function sample() {
  const t = now();
  const s = readProc(plan.server_pid);
  // With several server-side processes (nodes, Redis), their sum: the
  // noise table then counts only other people's work as foreign.
  if (plan.pids) s.cpu = PIDS.reduce((a, p) => a + readProc(p.pid).cpu, 0);
  const g = process.cpuUsage();
  const gcpu = (g.user + g.system) / 1e6;
  const cores = readCores();
  if (lastSample) {
    const dt = (t - lastSample.t) / 1000;
    const busy = cores.map((c, i) => {
      const p = lastSample.cores[i];
      if (!p || c.total === p.total) return 0;
      return Math.round(100 * (1 - (c.idle - p.idle) / (c.total - p.total)));
    });
    timeline.push({
      core_busy_pct: busy,
      t: Math.round((t - t0) / 100) / 10,
      server_cpu_pct: Math.max(0, Math.round((100 * (s.cpu - lastSample.cpu)) / dt)),
      gen_cpu_pct: Math.round((100 * (gcpu - lastSample.gcpu)) / dt),
      server_rss_mb: Math.round(s.rssKb / 102.4) / 10,
      connections: connCount,
      received_per_s: Math.round((counters.received - lastSample.received) / dt),
    });
  }
  lastSample = { t, cpu: s.cpu, gcpu, received: counters.received, cores };
}
const sampler = setInterval(sample, 1000);
sample();

function rssKb() { return readProc(plan.server_pid).rssKb; }
function cpuByProcess() {
  const out = {};
  for (const p of PIDS) out[p.name] = fs.existsSync(`/proc/${p.pid}`) ? readProc(p.pid).cpu : null;
  return out;
}
function cpuSecs() { return readProc(plan.server_pid).cpu; }

// ---------------------------------------------------------------- ciphertext pool

// Valid-shaped boxes: a 24-byte nonce and 256-byte padded plaintext + 16-byte
// tag, i.e. one pad block — what a short chat line encrypts to. The server
// checks only shape and size, so random bytes of these sizes are
// indistinguishable from real ciphertext to it; the PyNaCl sample
// (loadtests/e2e_sample.py) sends real ones alongside.
const POOL = Array.from({ length: 64 }, () => ({
  nonce: b64url(crypto.randomBytes(24)),
  ct: b64url(crypto.randomBytes(plan.ct_bytes || 272)),
}));

// ---------------------------------------------------------------- endpoints

// One member's end of one conversation.
class Endpoint {
  constructor(conn, conv, member, role) {
    this.conn = conn;
    this.conv = conv;
    this.member = member;
    this.role = role;
    this.peer = null; // the other member's id
    this.epoch = 0;
    this.ready = false;
    this.acked = 0; // last seq the server accepted from us
    this.inflight = false;
    this.due = false;
    this.sentAt = new Map(); // seq -> time of first attempt
    this.lastRecv = 0; // last seq received from the peer
    this.sinceDelivered = 0;
    this.deliveredAck = 0; // last seq the server confirmed as delivered
    this.reconnected = false;
    this.resume = null;
    this.timer = null;
    this.stopped = false;
    this.salt = Math.floor(Math.random() * POOL.length);
    this.seqAtDrop = 0;
    this.resumedAt = 0;
  }
}
const endpoints = new Map(); // member id -> Endpoint
let saturating = false;

// The server's word on our last accepted seq: from a send ack, a `replayed`
// refusal, or the roster in a resume reply (an ack lost in a drop).
function setAcked(ep, seq) {
  if (seq > ep.acked) { counters.sent += seq - ep.acked; ep.acked = seq; }
}

function sendOne(ep) {
  if (ep.stopped) return;
  if (!ep.ready) { ep.due = true; return; }
  if (ep.inflight || ep.conn.closed) { ep.due = true; counters.late_sends += ep.inflight ? 1 : 0; return; }
  const seq = ep.acked + 1;
  const box = POOL[(seq + ep.salt) % POOL.length];
  const t = now();
  if (!ep.sentAt.has(seq)) ep.sentAt.set(seq, t);
  ep.inflight = true;
  ep.due = false;
  const conn = ep.conn;
  conn.call('send', {
    conversation: ep.conv, epoch: ep.epoch, seq,
    boxes: [{ to: ep.peer, nonce: box.nonce, ct: box.ct }],
  }).then((r) => {
    if (ep.conn !== conn) return; // reconnected meanwhile: resume settled the seq
    ep.inflight = false;
    if (r.ok) {
      setAcked(ep, seq);
      if (windowOpen) sendAckHist.add(now() - t);
      if (saturating || ep.due) sendOne(ep);
      return;
    }
    if (r.error === 'dropped' || r.error === 'closed') return; // storm: resume will tell
    if (r.error === 'replayed') { setAcked(ep, seq); return; }
    noteReply('send', r);
    if (r.error === 'rate_limited' || r.error === 'backlog_full') {
      setTimeout(() => sendOne(ep), 1000 * ((r.info && r.info.retry_after_secs) || 1));
    }
  });
}

function onBox(conn, d) {
  const ep = endpoints.get(d.to);
  if (!ep) { counters.stray += 1; return; }
  const seq = d.seq;
  if (seq <= ep.lastRecv) {
    if (ep.missing && ep.missing.delete(seq)) {
      // It was skipped by an earlier, newer box: the server sent this
      // sender's boxes out of order. A client following the protocol's
      // replay rule drops it, so for the person it is lost.
      counters.arrived_late_dropped += 1;
    } else if (ep.reconnected && seq > ep.deliveredAck) counters.redelivered += 1;
    else { counters.duplicated += 1; noteOddBox('duplicated', ep, d); }
    return;
  }
  if (seq > ep.lastRecv + 1) {
    counters.out_of_order += 1;
    noteOddBox('out_of_order', ep, d);
    if (!ep.missing) ep.missing = new Set();
    for (let k = ep.lastRecv + 1; k < seq && ep.missing.size < 10000; k++) ep.missing.add(k);
  }
  ep.lastRecv = seq;
  counters.received += 1;
  if (windowOpen) windowReceived += 1; // throughput: every box that lands in the window
  const sender = endpoints.get(d.from);
  if (sender) {
    const t = sender.sentAt.get(seq);
    if (t !== undefined) {
      sender.sentAt.delete(seq);
      const ms = now() - t;
      relayAll.add(ms);
      if (windowOpen && t >= windowStart) relayWindow.add(ms);
    }
  }
  ep.sinceDelivered += 1;
  if (ep.sinceDelivered >= deliveredEvery) {
    ep.sinceDelivered = 0;
    conn.call('delivered', { conversation: ep.conv, from: d.from, seq }).then((r) => {
      if (r.ok) { if (seq > ep.deliveredAck) ep.deliveredAck = seq; } else if (r.error !== 'dropped' && r.error !== 'closed') noteReply('delivered', r);
    });
  }
}

// Per directed pair: what the server accepted from the sender minus what the
// receiver got. Called when a conversation is retired and at the very end.
// `ended`: the conversation was ended with boxes still on their way — the
// server drops its buffers at the end by design (protocol.md `leave`/`end`);
// zero unless the server is so slow that delivery takes longer than the
// ender's 5 s wait.
function account(ep, atEnd = false, ended = false) {
  const rx = endpoints.get(ep.peer);
  if (!rx || ep.acked <= rx.lastRecv) return;
  const n = ep.acked - rx.lastRecv;
  if (ended) counters.dropped_by_end += n;
  else if (atEnd && drainCutoff) counters.undelivered_at_cutoff += n;
  else if (rx.conn.closed && !rx.conn.dropping) {
    // The server closed the receiver's connection (an overloaded server
    // misses pongs); relay clients do not resume, so its buffer waits in
    // vain. Counted apart from loss, next to `unexpected_disconnects`.
    counters.stranded_by_server_disconnect += n;
  }
  else {
    counters.lost += n;
    if (lostExamples.length < 10) {
      lostExamples.push({
        from_role: ep.role, to_role: rx.role, accepted_seq: ep.acked, last_received: rx.lastRecv,
        delivered_acked: rx.deliveredAck, receiver_reconnected: rx.reconnected,
        sender_reconnected: ep.reconnected, receiver_ready: rx.ready,
        receiver_conn_closed: rx.conn.closed,
      });
    }
  }
}
const lostExamples = [];
// What the receiver knew when a box came twice or skipped ahead (no content:
// roles, seqs, nodes, ages), for whoever hunts the cause.
const oddBoxes = [];
function noteOddBox(kind, ep, d) {
  if (oddBoxes.length >= 10) return;
  const sender = endpoints.get(d.from);
  oddBoxes.push({
    kind, to_role: ep.role, seq: d.seq, last_received: ep.lastRecv, delivered_acked: ep.deliveredAck,
    epoch: ep.epoch, box_epoch: d.epoch, receiver_node: ep.conn.node, sender_node: sender ? sender.conn.node : null,
    sender_acked: sender ? sender.acked : null, t_secs: Math.round((now() - t0) / 100) / 10,
  });
}

// Wait until every accepted box has arrived. An overloaded server may hold a
// long backlog: keep waiting while deliveries still progress (up to
// DRAIN_MAX_MS); stop after STALL_MS without progress. A backlog still
// draining at the cut-off is reported as `undelivered_at_cutoff`, not as loss.
const DRAIN_MAX_MS = 120000;
const STALL_MS = 10000;
let drainCutoff = false;
async function drain(maxMs) {
  const until = now() + Math.max(maxMs, DRAIN_MAX_MS);
  let lastReceived = counters.received;
  let lastProgress = now();
  for (;;) {
    let pending = false;
    for (const ep of endpoints.values()) {
      const rx = endpoints.get(ep.peer);
      if (ep.inflight || (rx && rx.lastRecv < ep.acked)) { pending = true; break; }
    }
    if (!pending) return true;
    if (counters.received !== lastReceived) { lastReceived = counters.received; lastProgress = now(); }
    if (now() - lastProgress > STALL_MS) return false; // stalled: what is missing is lost
    if (now() > until) { drainCutoff = true; return false; }
    await sleep(100);
  }
}

// ---------------------------------------------------------------- clients

function makeConn(ns, headers, node = 0) {
  const Cls = STACK === 'bare' ? BareConn : SioConn;
  const conn = new Cls(NODES[node].base, ns, { Origin: ORIGIN, ...headers }, stats, DEFLATE);
  conn.node = node;
  return conn;
}

async function pool(items, concurrency, fn) {
  let i = 0;
  const results = new Array(items.length);
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (i < items.length) {
      const k = i++;
      results[k] = await fn(items[k], k);
    }
  });
  await Promise.all(workers);
  return results;
}

class Youth {
  constructor(node = 0) { this.node = node; this.conn = null; this.ep = null; this.conv = null; this.member = null; this.resume = null; this.state = 'new'; this.onEnded = null; this.onStateChange = null; }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    const notify = this.onStateChange;
    this.onStateChange = null;
    if (notify) notify(state);
  }

  async connect() {
    this.conn = makeConn('/youth', {}, this.node);
    const err = await this.conn.open();
    if (err) { counters.connect_failures += 1; noteError(`connect:${err}`); return false; }
    connCount += 1;
    this.conn.onEvent = (ev, d) => this.onEvent(ev, d);
    this.conn.onClose = (deliberate) => { connCount -= 1; if (!deliberate) counters.unexpected_disconnects += 1; };
    return true;
  }

  onEvent(ev, d) {
    if (ev === 'box') onBox(this.conn, d);
    else if (ev === 'roster') this.onRoster(d);
    else if (ev === 'queue') { counters.youth_queue_events += 1; counters.youth_queue_bytes += JSON.stringify(d).length; }
    else if (ev === 'typing') counters.typing_in += 1;
    else if (ev === 'state' && d.state === 'ended') { this.setState('ended'); if (this.onEnded) this.onEnded(d.reason); }
  }

  onRoster(d) {
    const other = d.members.find((m) => m.member !== this.member && m.role === 'counsellor');
    if (!other || !this.ep) return;
    this.ep.peer = other.member;
    this.ep.epoch = d.epoch;
    this.ep.ready = d.state === 'active';
    this.setState(d.state);
    if (this.ep.ready && this.ep.due) sendOne(this.ep);
  }

  // chat: start and wait in the queue; baselines: join a known conversation
  async start(profile) {
    const t = now();
    const r = await this.conn.call('start', profile ? { kx_pk: kxPk(), profile } : { kx_pk: kxPk() });
    if (!noteReply('start', r)) return false;
    startHist.add(now() - t);
    this.conv = r.conversation; this.member = r.member; this.resume = r.resume; this.state = 'waiting';
    this.ep = new Endpoint(this.conn, this.conv, this.member, 'youth');
    this.ep.resume = r.resume;
    endpoints.set(this.member, this.ep);
    return true;
  }

  async join(conv, member, peer) {
    const r = await this.conn.call('join', { conversation: conv, member });
    if (!noteReply('join', r)) return false;
    this.conv = conv; this.member = member; this.state = 'active';
    this.ep = new Endpoint(this.conn, conv, member, 'youth');
    this.ep.peer = peer; this.ep.epoch = 1; this.ep.ready = true;
    endpoints.set(member, this.ep);
    return true;
  }
}

class Counsellor {
  constructor(account, node = 0) { this.node = node; this.account = account; this.conn = null; this.cookie = null; this.eps = new Map(); this.snapshot = []; this.v = null; this.syncing = false; this.capacity = plan.capacity || 3; this.busy = false; }

  async connect() {
    if (STACK === 'chat' && !this.cookie) this.cookie = await login(NODES[this.node].base, ORIGIN, this.account);
    this.conn = makeConn('/staff', this.cookie ? { Cookie: this.cookie } : {}, this.node);
    const err = await this.conn.open();
    if (err) { counters.connect_failures += 1; noteError(`connect:${err}`); return false; }
    connCount += 1;
    this.conn.onEvent = (ev, d) => this.onEvent(ev, d);
    this.conn.onClose = (deliberate) => { connCount -= 1; if (!deliberate) counters.unexpected_disconnects += 1; };
    if (STACK === 'chat') return noteReply('duty', await this.conn.call('duty', { on: true }));
    return true;
  }

  onEvent(ev, d) {
    if (ev === 'box') onBox(this.conn, d);
    else if (ev === 'queue') { counters.staff_queue_events += 1; counters.staff_queue_snapshots += 1; counters.staff_queue_bytes += JSON.stringify(d).length; this.snapshot = d.entries || []; this.v = d.v ?? null; this.syncing = false; }
    else if (ev === 'queue_delta') { counters.staff_queue_events += 1; counters.staff_queue_bytes += JSON.stringify(d).length; this.applyDelta(d); }
    else if (ev === 'typing') counters.typing_in += 1;
    else if (ev === 'state' && d.state === 'ended') { const ep = this.eps.get(d.conversation); if (ep && this.onEnded) this.onEnded(ep, d.reason); }
    else if (ev === 'roster') { const ep = this.eps.get(d.conversation); if (ep) ep.epoch = d.epoch; }
  }

  // docs/protocol.md, "Queue views": the same rule as the console's.
  applyDelta(d) {
    if (this.syncing) return;
    if (d.from_v !== this.v) {
      if (this.v !== null && d.v <= this.v) return; // older than the view held
      this.syncing = true;
      counters.staff_queue_resyncs += 1;
      this.conn.call('queue_sync', {}).then((r) => { if (!r.ok) this.syncing = false; });
      return;
    }
    const gone = new Set(d.removed);
    const changed = new Map(d.changed.map((e) => [e.conversation, e]));
    const list = this.snapshot.filter((e) => !gone.has(e.conversation)).map((e) => changed.get(e.conversation) || e);
    for (const a of [...d.added].sort((x, y) => x.at - y.at)) list.splice(a.at, 0, a.entry);
    this.snapshot = list;
    this.v = d.v;
  }

  adopt(r) {
    const youth = r.members.find((m) => m.role === 'youth');
    const ep = new Endpoint(this.conn, r.conversation, r.member, 'counsellor');
    ep.peer = youth.member; ep.epoch = r.epoch; ep.ready = true; ep.resume = r.resume;
    const yEp = endpoints.get(youth.member);
    if (yEp) { counters.claims_placed += 1; if (yEp.conn.node !== this.conn.node) counters.claims_cross_node += 1; }
    this.eps.set(r.conversation, ep);
    endpoints.set(r.member, ep);
    return ep;
  }

  async claim(conversation) {
    const t = now();
    const r = conversation
      ? await this.conn.call('claim', { conversation, kx_pk: kxPk() })
      : await this.conn.call('take_next', { kx_pk: kxPk() });
    const ms = now() - t;
    if (!noteReply(conversation ? 'claim' : 'take_next', r)) return { ok: false, error: r.error, ms };
    claimHist.add(ms);
    return { ok: true, ep: this.adopt(r), ms };
  }

  async join(conv, member, peer) {
    const r = await this.conn.call('join', { conversation: conv, member });
    if (!noteReply('join', r)) return null;
    const ep = new Endpoint(this.conn, conv, member, 'counsellor');
    ep.peer = peer; ep.epoch = 1; ep.ready = true;
    this.eps.set(conv, ep);
    endpoints.set(member, ep);
    return ep;
  }
}

let accountIdx = 0;
function nextAccount() {
  const a = (plan.accounts || [])[accountIdx++];
  if (STACK === 'chat' && !a) throw new Error('not enough staff accounts in the plan');
  return a || { username: `c${accountIdx}` };
}

async function openCounsellors(n) {
  const list = Array.from({ length: n }, (_, i) => new Counsellor(nextAccount(), spread(i)));
  const conc = STACK === 'chat' ? LOGIN_CONCURRENCY : CONNECT_CONCURRENCY;
  const ok = await pool(list, conc, async (c) => {
    try { return await c.connect(); } catch (e) { noteError(`login:${e.message.split(':').pop().trim()}`); return false; }
  });
  return list.filter((_, i) => ok[i]);
}

let youthsOpened = 0;
async function openYouths(n) {
  const list = Array.from({ length: n }, () => new Youth(spread(youthsOpened++)));
  const ok = await pool(list, CONNECT_CONCURRENCY, (y) => y.connect());
  return list.filter((_, i) => ok[i]);
}

// Pair every youth with a counsellor (round robin up to `capacity` each).
// chat: start -> take_next -> roster; baselines: join with generator-made ids.
async function pairUp(youths, counsellors) {
  if (STACK !== 'chat') {
    await pool(youths, CONNECT_CONCURRENCY, async (y, i) => {
      const c = counsellors[i % counsellors.length];
      const conv = randHex(); const ym = randHex(); const cm = randHex();
      await c.join(conv, cm, ym);
      await y.join(conv, ym, cm);
    });
    return;
  }
  await pool(youths, CONNECT_CONCURRENCY, (y) => y.start());
  if (PLACEMENT === 'cross') {
    // Each counsellor claims waiting youths held by another node by name;
    // whoever is left (an odd count) is taken from the queue's head below.
    const free = new Map();
    for (const y of youths) if (y.ep) { if (!free.has(y.node)) free.set(y.node, []); free.get(y.node).push(y); }
    await pool(counsellors, 50, async (c) => {
      while (c.eps.size < c.capacity) {
        const other = [...free.keys()].find((k) => k !== c.node && free.get(k).length);
        if (other === undefined) break;
        await c.claim(free.get(other).shift().conv);
      }
    });
  }
  // Counsellors take from the head of the queue until full or the queue is empty.
  await pool(counsellors, 50, async (c) => {
    while (c.eps.size < c.capacity) {
      const r = await c.claim(null);
      if (!r.ok) break;
    }
  });
  const until = now() + 30000;
  while (now() < until) {
    if (youths.every((y) => !y.ep || y.ep.ready)) break;
    await sleep(100);
  }
}

// ---------------------------------------------------------------- traffic phases

function startRate(eps, intervalFn) {
  for (const ep of eps) {
    ep.stopped = false;
    const tick = () => {
      if (ep.stopped) return;
      sendOne(ep);
      ep.timer = setTimeout(tick, intervalFn());
    };
    ep.timer = setTimeout(tick, Math.random() * intervalFn());
  }
}
function stopAll(eps) {
  saturating = false;
  for (const ep of eps) { ep.stopped = true; if (ep.timer) clearTimeout(ep.timer); ep.timer = null; }
}

async function ratePhase(eps, intervalFn, warmupS, windowS) {
  deliveredEvery = 1; // a live chat acks every box
  startRate(eps, intervalFn);
  await sleep(warmupS * 1000);
  const cpu0 = cpuSecs();
  log('window open');
  openWindow();
  await sleep(windowS * 1000);
  const w = closeWindow();
  const cpu1 = cpuSecs();
  stopAll(eps);
  await drain(15000);
  return {
    window_secs: Math.round(w.secs * 10) / 10,
    relayed_per_s: Math.round(w.received / w.secs),
    latency: w.hist.summary(true),
    server_cpu_pct: Math.round((100 * (cpu1 - cpu0)) / w.secs),
    received: w.received, cpu_secs_by_process: w.cpu,
  };
}

async function saturatePhase(eps, warmupS, windowS) {
  // A client catching up acks cumulatively; every 16th box keeps the server's
  // buffer far below backlog_max_boxes.
  deliveredEvery = 16;
  saturating = true;
  for (const ep of eps) { ep.stopped = false; sendOne(ep); }
  await sleep(warmupS * 1000);
  const cpu0 = cpuSecs();
  const g0 = process.cpuUsage();
  openWindow();
  await sleep(windowS * 1000);
  const w = closeWindow();
  const cpu1 = cpuSecs();
  const g1 = process.cpuUsage(g0);
  stopAll(eps);
  await drain(20000);
  return {
    window_secs: Math.round(w.secs * 10) / 10,
    relayed_per_s: Math.round(w.received / w.secs),
    latency: w.hist.summary(false),
    server_cpu_pct: Math.round((100 * (cpu1 - cpu0)) / w.secs),
    gen_cpu_pct: Math.round((100 * (g1.user + g1.system) / 1e6) / w.secs),
    received: w.received, cpu_secs_by_process: w.cpu,
  };
}

function topology(connections, capacity) {
  const nCouns = Math.max(1, Math.ceil(connections / (capacity + 1)));
  return { nCouns, nYouth: connections - nCouns };
}

// ---------------------------------------------------------------- scenarios

// Relay: N connections in conversations; idle RSS; optional fixed-rate latency
// window; optional closed-loop saturation window.
async function scenarioRelay() {
  const { nCouns, nYouth } = topology(plan.connections, plan.capacity);
  log(`relay: ${nYouth} youths + ${nCouns} counsellors`);
  const rss0 = rssKb();
  const counsellors = await openCounsellors(nCouns);
  const rss1 = rssKb();
  const youths = await openYouths(nYouth);
  await sleep(1000);
  const rss2 = rssKb();
  await pairUp(youths, counsellors);
  await sleep(1000);
  const rss3 = rssKb();
  const eps = [...endpoints.values()];
  const out = {
    youths: youths.length, counsellors: counsellors.length, connections: youths.length + counsellors.length,
    conversations: eps.filter((e) => e.role === 'youth' && e.ready).length,
    rss_mb: { before: rss0 / 1024, counsellors: rss1 / 1024, youths_connected: rss2 / 1024, paired: rss3 / 1024 },
    rss_per_idle_youth_kb: Math.round(((rss2 - rss1) / Math.max(1, youths.length)) * 10) / 10,
    rss_per_paired_youth_kb: Math.round(((rss3 - rss1) / Math.max(1, youths.length)) * 10) / 10,
    cross_node_conversations: crossNode(youths),
  };
  if (plan.latency) {
    // Offered load per *connection*, whatever the topology: "1 msg/s per pair"
    // is 0.5 msg/s per connection, spread evenly over every member's sends.
    const total = plan.latency.msgs_per_sec_per_connection * out.connections;
    const per = (1000 * eps.length) / total; // ms between one member's sends
    out.latency_offered_per_s = Math.round(total);
    log(`latency window ${plan.latency.window_secs}s, ${Math.round(total)} msg/s offered (one send per ${Math.round(per)} ms per member)`);
    out.latency = await ratePhase(eps, () => per, plan.latency.warmup_secs, plan.latency.window_secs);
  }
  if (plan.saturate) {
    log(`saturation window ${plan.saturate.window_secs}s`);
    out.saturate = await saturatePhase(eps, plan.saturate.warmup_secs, plan.saturate.window_secs);
  }
  return out;
}

// Conversations whose youth and counsellor are connected to different nodes.
function crossNode(youths) {
  return youths.filter((y) => {
    const peer = y.ep && y.ep.ready && endpoints.get(y.ep.peer);
    return peer && peer.conn.node !== y.conn.node;
  }).length;
}

// kill -9 of one node under load (several nodes, placement 'cross'): the
// conversations chat at a steady rate; after the warm-up the node
// `plan.kill_node` (an index into NODES) is killed. Its clients see their
// connections fail, reconnect to a surviving node after a random pause of up
// to `reconnect_within_secs` (a browser's backoff) and resume every
// conversation. A conversation is whole again when its member on the killed
// node is back and each side has every box the other had been acknowledged
// before the kill.
async function scenarioFailover() {
  const { nCouns, nYouth } = topology(plan.connections, plan.capacity);
  const counsellors = await openCounsellors(nCouns);
  const youths = await openYouths(nYouth);
  await pairUp(youths, counsellors);
  const crossConvs = crossNode(youths);
  const eps = () => [...endpoints.values()].filter((e) => e.ready);
  const interval = () => uniform(plan.interval_min_secs, plan.interval_max_secs) * 1000;
  startRate(eps(), interval);
  await sleep(plan.warmup_secs * 1000);
  const dead = plan.kill_node;
  const alive = NODES.map((_, i) => i).filter((i) => i !== dead);
  const convs = youths.filter((y) => y.ep && y.ep.ready).map((y) => ({ y: y.ep, c: endpoints.get(y.ep.peer), wholeAt: 0 }));
  const resumeHist = new Histogram();
  let resumeFailures = 0;
  let reconnects = 0;
  const tKill = now();
  for (const ep of endpoints.values()) {
    ep.seqAtDrop = ep.acked;
    if (ep.conn.node === dead) { ep.ready = false; ep.conn.dropping = true; } else ep.resumedAt = tKill;
  }
  log(`failover: kill -9 ${NODES[dead].name} holding ${[...endpoints.values()].filter((e) => e.conn.node === dead).length} conversation ends`);
  process.kill(NODES[dead].pid, 'SIGKILL');

  // Reconnect to a surviving node (tried again if it refuses) and resume.
  async function reopen(ns, headers, onEvent) {
    await sleep(Math.random() * plan.reconnect_within_secs * 1000);
    for (let attempt = 0; attempt < 10; attempt++) {
      const c = makeConn(ns, headers, alive[Math.floor(Math.random() * alive.length)]);
      const err = await c.open();
      if (!err) {
        connCount += 1; reconnects += 1;
        c.onEvent = onEvent;
        c.onClose = (deliberate) => { connCount -= 1; if (!deliberate) counters.unexpected_disconnects += 1; };
        return c;
      }
      await sleep(500);
    }
    noteError('reconnect:failed');
    return null;
  }
  async function resume(conn, ep) {
    if (!await resumeOn(conn, ep, resumeHist)) resumeFailures += 1;
  }
  const waitClosed = async (conn) => { while (!conn.closed) await sleep(20); };
  const youthJobs = youths.filter((y) => y.ep && y.conn.node === dead).map(async (y) => {
    await waitClosed(y.conn);
    const conn = await reopen('/youth', {}, (ev, d) => y.onEvent(ev, d));
    if (!conn) return;
    y.conn = conn; y.ep.conn = conn; y.ep.inflight = false; y.ep.reconnected = true;
    await resume(conn, y.ep);
  });
  const staffJobs = counsellors.filter((c) => c.conn.node === dead).map(async (c) => {
    await waitClosed(c.conn);
    const conn = await reopen('/staff', { Cookie: c.cookie }, (ev, d) => c.onEvent(ev, d));
    if (!conn) return;
    c.conn = conn;
    for (const ep of c.eps.values()) { ep.conn = conn; ep.inflight = false; ep.reconnected = true; }
    await Promise.all([...c.eps.values()].map((ep) => resume(conn, ep)));
    noteReply('duty', await conn.call('duty', { on: true }));
  });
  const watcher = watchWhole(convs, tKill, plan.max_wait_secs);
  await Promise.all([...youthJobs, ...staffJobs]);
  const { whole, wholeTimes, allWholeMs } = await watcher;
  log(`failover: ${whole}/${convs.length} conversations whole again${allWholeMs ? ` after ${Math.round(allWholeMs)} ms` : ''}`);
  await sleep(plan.after_secs * 1000);
  stopAll([...endpoints.values()]);
  await drain(20000);
  return {
    connections: youths.length + counsellors.length, conversations: convs.length,
    cross_node_conversations: crossConvs, killed: NODES[dead].name, reconnects,
    whole_again: whole, all_whole_after_ms: allWholeMs ? Math.round(allWholeMs) : null,
    whole_after: wholeTimes.summary(false), resume_call: resumeHist.summary(false),
    resume_failures: resumeFailures,
  };
}

// Capacity ramp: add connections in steps, fixed per-member rate, until p99 >
// limit or errors appear.
async function scenarioRamp() {
  const steps = [];
  const counsellors = [];
  const youths = [];
  let stopReason = 'max_step_reached';
  for (const target of plan.steps) {
    const { nCouns, nYouth } = topology(target, plan.capacity);
    const newC = await openCounsellors(nCouns - counsellors.length);
    counsellors.push(...newC);
    const newY = await openYouths(nYouth - youths.length);
    youths.push(...newY);
    const errBefore = Object.values(errors).reduce((a, b) => a + b, 0) + counters.connect_failures;
    // new counsellors take the new youths
    if (STACK === 'chat') {
      await pool(newY, CONNECT_CONCURRENCY, (y) => y.start());
      await pool(counsellors, 50, async (c) => { while (c.eps.size < c.capacity) { if (!(await c.claim(null)).ok) break; } });
      const until = now() + 30000;
      while (now() < until && !newY.every((y) => !y.ep || y.ep.ready)) await sleep(100);
    } else {
      await pairUp(newY, newC.length ? newC : counsellors);
    }
    const eps = [...endpoints.values()].filter((e) => e.ready);
    const r = await ratePhase(eps, () => uniform(plan.interval_min_secs, plan.interval_max_secs) * 1000,
      plan.warmup_secs, plan.window_secs);
    const errAfter = Object.values(errors).reduce((a, b) => a + b, 0) + counters.connect_failures;
    const step = {
      connections: connCount, target, ...r, rss_mb: rssKb() / 1024, new_errors: errAfter - errBefore,
      lost_so_far: 0,
    };
    steps.push(step);
    log(`ramp ${connCount} conns: p99 ${r.latency.p99_ms} ms, cpu ${r.server_cpu_pct}%, errors +${step.new_errors}`);
    if (r.latency.p99_ms > plan.p99_limit_ms) { stopReason = `p99 ${r.latency.p99_ms} ms > ${plan.p99_limit_ms} ms`; break; }
    if (step.new_errors > 0) { stopReason = `errors appeared: ${JSON.stringify(errors)}`; break; }
    if (counters.connect_failures > 0) { stopReason = 'connection failures'; break; }
  }
  return { steps, stop_reason: stopReason };
}

// Reconnect storm: conversations chatting; every client drops within
// `drop_within_secs` and reconnects after a random pause, then resumes.
async function scenarioStorm() {
  const { nCouns, nYouth } = topology(plan.connections, plan.capacity);
  const counsellors = await openCounsellors(nCouns);
  const youths = await openYouths(nYouth);
  await pairUp(youths, counsellors);
  const eps = () => [...endpoints.values()].filter((e) => e.ready);
  const interval = () => uniform(plan.interval_min_secs, plan.interval_max_secs) * 1000;
  startRate(eps(), interval);
  await sleep(plan.warmup_secs * 1000);
  log(`storm: ${connCount} connections drop within ${plan.drop_within_secs}s`);
  const tStorm = now();
  const resumeHist = new Histogram();
  let resumeFailures = 0;
  const convs = youths.filter((y) => y.ep && y.ep.ready).map((y) => ({ y: y.ep, c: endpoints.get(y.ep.peer), wholeAt: 0 }));

  async function reconnect(ep, reopen) {
    await sleep(Math.random() * plan.reconnect_within_secs * 1000);
    const conn = await reopen();
    if (!conn) { resumeFailures += 1; return; }
    return conn;
  }

  const youthJobs = youths.filter((y) => y.ep).map(async (y) => {
    await sleep(Math.random() * plan.drop_within_secs * 1000);
    y.ep.seqAtDrop = y.ep.acked;
    y.ep.ready = false;
    y.conn.drop();
    const conn = await reconnect(y.ep, async () => {
      const c = makeConn('/youth', {});
      const err = await c.open();
      if (err) { noteError(`reconnect:${err}`); return null; }
      connCount += 1;
      c.onEvent = (ev, d) => y.onEvent(ev, d);
      c.onClose = (deliberate) => { connCount -= 1; if (!deliberate) counters.unexpected_disconnects += 1; };
      return c;
    });
    if (!conn) return;
    y.conn = conn; y.ep.conn = conn; y.ep.inflight = false; y.ep.reconnected = true;
    if (!await resumeOn(conn, y.ep, resumeHist)) resumeFailures += 1;
  });
  const staffJobs = counsellors.map(async (c) => {
    await sleep(Math.random() * plan.drop_within_secs * 1000);
    for (const ep of c.eps.values()) { ep.seqAtDrop = ep.acked; ep.ready = false; }
    c.conn.drop();
    const conn = await reconnect(null, async () => {
      const cc = makeConn('/staff', { Cookie: c.cookie });
      const err = await cc.open();
      if (err) { noteError(`reconnect:${err}`); return null; }
      connCount += 1;
      cc.onEvent = (ev, d) => c.onEvent(ev, d);
      cc.onClose = (deliberate) => { connCount -= 1; if (!deliberate) counters.unexpected_disconnects += 1; };
      return cc;
    });
    if (!conn) return;
    c.conn = conn;
    for (const ep of c.eps.values()) { ep.conn = conn; ep.inflight = false; ep.reconnected = true; }
    await Promise.all([...c.eps.values()].map(async (ep) => {
      if (!await resumeOn(conn, ep, resumeHist)) resumeFailures += 1;
    }));
    noteReply('duty', await conn.call('duty', { on: true }));
  });
  const watcher = watchWhole(convs, tStorm, plan.max_wait_secs);
  await Promise.all([...youthJobs, ...staffJobs]);
  const { whole, wholeTimes, allWholeMs } = await watcher;
  // keep chatting a little after the storm, then stop and check nothing was lost
  await sleep(plan.after_secs * 1000);
  stopAll([...endpoints.values()]);
  await drain(20000);
  return {
    connections: youths.length + counsellors.length, conversations: convs.length,
    whole_again: whole, all_whole_after_ms: allWholeMs ? Math.round(allWholeMs) : null,
    whole_after: wholeTimes.summary(false), resume_call: resumeHist.summary(false),
    resume_failures: resumeFailures,
  };
}



// Resume one endpoint on a new connection and go on from the seq the server
// says it accepted; false when the server refused (the caller counts it).
async function resumeOn(conn, ep, hist) {
  const t = now();
  const r = await conn.call('resume', { conversation: ep.conv, member: ep.member, resume: ep.resume });
  if (!noteReply('resume', r)) return false;
  hist.add(now() - t);
  const me = r.members.find((m) => m.member === ep.member);
  if (me) setAcked(ep, me.seq);
  ep.epoch = r.epoch;
  ep.ready = true;
  ep.resumedAt = now();
  if (ep.due) sendOne(ep);
  return true;
}

// A conversation is whole again when both ends are back and each has every
// box its peer had sent before the peer dropped (a storm, a killed node).
// Watches until all are or the wait runs out, then says how long each took.
async function watchWhole(convs, t0, maxWaitSecs) {
  const deadline = t0 + maxWaitSecs * 1000;
  let whole = 0;
  while (now() < deadline) {
    whole = 0;
    for (const cv of convs) {
      if (!cv.wholeAt && cv.y.resumedAt && cv.c.resumedAt &&
          cv.y.lastRecv >= cv.c.seqAtDrop && cv.c.lastRecv >= cv.y.seqAtDrop) cv.wholeAt = now();
      if (cv.wholeAt) whole += 1;
    }
    if (whole === convs.length) break;
    await sleep(50);
  }
  const wholeTimes = new Histogram();
  for (const cv of convs) if (cv.wholeAt) wholeTimes.add(cv.wholeAt - t0);
  const allWholeMs = whole === convs.length ? Math.max(...convs.map((cv) => cv.wholeAt - t0)) : null;
  return { whole, wholeTimes, allWholeMs };
}

// Claim latency against the number of waiting youths.
async function scenarioClaims() {
  const [c] = await openCounsellors(1);
  const waiting = [];
  const curve = [];
  for (const size of plan.sizes) {
    const add = await openYouths(size - waiting.length);
    const t = now();
    await pool(add, CONNECT_CONCURRENCY, (y) => y.start());
    const addSecs = (now() - t) / 1000;
    waiting.push(...add.filter((y) => y.ep));
    const claimH = new Histogram();
    const takeH = new Histogram();
    const startH = new Histogram();
    for (let i = 0; i < plan.claims_per_size; i++) {
      // claim a random waiting youth (a snapshot pick), then take_next; end both
      // and refill the queue so its length stays at `size`.
      const k = Math.floor(Math.random() * waiting.length);
      const y = waiting.splice(k, 1)[0];
      let r = await c.claim(y.conv);
      if (r.ok) claimH.add(r.ms);
      const r2 = await c.claim(null);
      if (r2.ok) takeH.add(r2.ms);
      for (const ep of [...c.eps.values()]) {
        noteReply('end', await c.conn.call('end', { conversation: ep.conv }));
        c.eps.delete(ep.conv);
        const youthEp = endpoints.get(ep.peer);
        endpoints.delete(ep.member);
        endpoints.delete(ep.peer);
        if (youthEp) youthEp.conn.close();
      }
      if (r2.ok) { const idx = waiting.findIndex((w) => w.conv === r2.ep.conv); if (idx >= 0) waiting.splice(idx, 1); }
      const fresh = await openYouths(size - waiting.length);
      for (const f of fresh) { const ts = now(); if (await f.start()) { startH.add(now() - ts); waiting.push(f); } }
    }
    curve.push({ waiting: size, claim: claimH.summary(false), take_next: takeH.summary(false), start: startH.summary(false), fill_secs: Math.round(addSecs * 10) / 10, rss_mb: rssKb() / 1024 });
    log(`claims at ${size} waiting: claim p50 ${claimH.quantile(0.5)} ms, take_next p50 ${takeH.quantile(0.5)} ms`);
  }
  return { curve };
}

// National evening peak: a Poisson stream of youths keeps ~N connected;
// counsellors on duty claim (from their queue snapshot or take-next) up to
// capacity; everyone in a chat sends every 10–20 s (typing first, sometimes);
// conversations end after an exponential time; waiting youths sometimes give up.
async function scenarioPeak() {
  const P = plan;
  log(`peak: ${P.counsellors} counsellors (capacity ${P.capacity}), ${P.youths} youths`);
  const counsellors = await openCounsellors(P.counsellors);
  const rssStaff = rssKb();
  const youths = new Set();
  let markAccounted;
  const accounted = new Promise((resolve) => { markAccounted = resolve; });
  let running = true;
  let markStopped;
  const stopped = new Promise((resolve) => { markStopped = () => resolve('cond'); });
  let arrivals = 0; let departures = 0; let abandoned = 0; let ended = 0;
  const interval = () => uniform(P.interval_min_secs, P.interval_max_secs) * 1000;
  const profiles = P.profiles || [{}];

  function chatTick(ep) {
    const tick = () => {
      if (ep.stopped) return;
      if (Math.random() < P.typing_probability) {
        ep.conn.call('typing', { conversation: ep.conv, active: true }).then((r) => { if (!r.ok && r.error !== 'closed' && r.error !== 'dropped') noteReply('typing', r); });
      }
      sendOne(ep);
      ep.timer = setTimeout(tick, interval());
    };
    ep.timer = setTimeout(tick, Math.random() * interval());
  }

  async function retire(yEp, cEp, reason) {
    // Stop both ends, let in-flight boxes land, account, then forget them.
    for (const ep of [yEp, cEp]) if (ep) { ep.stopped = true; if (ep.timer) clearTimeout(ep.timer); }
    const until = now() + 5000;
    while (now() < until && ((yEp && cEp && (yEp.inflight || cEp.inflight || yEp.lastRecv < cEp.acked || cEp.lastRecv < yEp.acked)))) await sleep(50);
    if (yEp && cEp) { account(yEp, false, true); account(cEp, false, true); }
    if (yEp) endpoints.delete(yEp.member);
    if (cEp) endpoints.delete(cEp.member);
    ended += 1;
  }

  async function youthLife() {
    const y = new Youth(spread(youthsOpened++));
    if (!(await y.connect())) return;
    youths.add(y);
    arrivals += 1;
    if (!(await y.start(profiles[arrivals % profiles.length]))) { youths.delete(y); y.conn.close(); return; }
    y.ep.stopped = false;
    let activated = false;
    const waitLimit = expRand(P.mean_patience_secs) * 1000;
    // Wait for a counsellor (or give up). Woken by the roster event, not by
    // polling: 8 000 waiting youths polling every 250 ms were 32 000 timer
    // callbacks a second in the generator, whose own stalls count in the
    // measured latency.
    if (running && y.state === 'waiting') {
      let patience;
      await Promise.race([
        new Promise((resolve) => { y.onStateChange = resolve; }),
        new Promise((resolve) => { patience = setTimeout(resolve, waitLimit); }),
        stopped,
      ]);
      clearTimeout(patience);
      y.onStateChange = null;
    }
    if (y.state === 'waiting' || y.state === 'new') {
      if (running) { abandoned += 1; noteReply('leave', await y.conn.call('leave', { conversation: y.conv, reason: 'done' })); }
      endpoints.delete(y.member);
    } else if (y.state === 'active') {
      activated = true;
      chatTick(y.ep);
      const ended = new Promise((resolve) => { y.onEnded = resolve; });
      const life = expRand(P.mean_chat_secs) * 1000;
      const youthLeaves = Math.random() < P.youth_leaves_fraction;
      const timeout = sleep(life).then(() => 'timeout');
      const why = await Promise.race([ended, timeout, stopped]);
      if (why === 'timeout' && youthLeaves && running && y.state === 'active') {
        const cEp = endpoints.get(y.ep.peer);
        await retire(y.ep, cEp, 'youth_left');
        noteReply('leave', await y.conn.call('leave', { conversation: y.conv, reason: 'done' }));
      } else {
        // the counsellor ends it (see counsellorLoop) or the run is over
        await Promise.race([ended, sleep(P.mean_chat_secs * 3000), stopped]);
      }
    }
    youths.delete(y);
    departures += 1;
    // At the run's end, keep the connection open until the final accounting
    // (drain, then count): closing it at once raced the last boxes in flight
    // to it, which were then counted as lost though the server had sent them.
    if (!running) await accounted;
    y.conn.close();
    void activated;
  }


  async function counsellorLoop(c) {
    c.onEnded = (ep) => { // the youth left: forget our end
      ep.stopped = true; if (ep.timer) clearTimeout(ep.timer);
      c.eps.delete(ep.conv);
      endpoints.delete(ep.member);
    };
    while (running) {
      await sleep(expRand(P.mean_claim_think_secs) * 1000);
      if (!running) break;
      if (c.eps.size >= c.capacity) continue;
      const pick = c.snapshot.length && Math.random() < P.claim_from_snapshot_fraction
        ? c.snapshot[Math.floor(Math.random() * Math.min(5, c.snapshot.length))].conversation : null;
      const r = await c.claim(pick);
      if (!r.ok) continue;
      const ep = r.ep;
      chatTick(ep);
      // the counsellor ends the conversation after its lifetime unless the youth leaves first
      const life = expRand(P.mean_chat_secs) * 1000 * (1 / (1 - P.youth_leaves_fraction));
      setTimeout(async () => {
        if (!running || !c.eps.has(ep.conv)) return;
        const yEp = endpoints.get(ep.peer);
        c.eps.delete(ep.conv);
        await retire(yEp, ep, 'done');
        noteReply('end', await c.conn.call('end', { conversation: ep.conv }));
      }, life);
    }
  }
  const staffLoops = counsellors.map((c) => counsellorLoop(c));

  // Arrivals: first a fast ramp to the target, then a Poisson process that
  // keeps the population near it (rate = population / mean time connected).
  const lives = [];
  const rampStart = now();
  const rampPerSec = P.ramp_per_sec;
  for (let i = 0; i < P.youths; i++) {
    lives.push(youthLife());
    if (i % 50 === 49) await sleep(1000 * 50 / rampPerSec);
  }
  const rssRamped = rssKb();
  log(`ramped ${youths.size} youths in ${Math.round((now() - rampStart) / 1000)} s`);
  const arrivalLoop = (async () => {
    while (running) {
      const deficit = P.youths - youths.size;
      // Poisson arrivals at a rate that closes the gap over ~10 s, capped: a
      // struggling server must not be buried under replacement arrivals (a
      // real evening has a few arrivals a second, not hundreds).
      const rate = Math.min(P.max_arrivals_per_sec, Math.max(1, deficit / 10));
      await sleep(expRand(1000 / rate));
      if (running && youths.size < P.youths) lives.push(youthLife());
    }
  })();
  await sleep(P.settle_secs * 1000);
  const q0 = { ...counters };
  const cpu0 = cpuSecs();
  const claimsBefore = claimHist.n;
  const claimWindow = new Histogram();
  const origAdd = claimHist.add.bind(claimHist);
  claimHist.add = (ms) => { origAdd(ms); claimWindow.add(ms); };
  openWindow();
  log(`window open: peak ${P.window_secs}s`);
  await sleep(P.window_secs * 1000);
  const w = closeWindow();
  const cpu1 = cpuSecs();
  const q1 = { ...counters };
  const activeNow = [...endpoints.values()].filter((e) => e.role === 'youth' && e.ready && !e.stopped).length;
  const connectedAtEnd = connCount;
  running = false;
  markStopped();
  for (const ep of endpoints.values()) { ep.stopped = true; if (ep.timer) clearTimeout(ep.timer); }
  await drain(15000);
  for (const ep of endpoints.values()) account(ep, true);
  endpoints.clear();
  markAccounted();
  await Promise.race([Promise.all([...lives, ...staffLoops, arrivalLoop]), sleep(20000)]);
  const secs = w.secs;
  return {
    counsellors: counsellors.length, capacity: P.capacity, youths_target: P.youths,
    connections_at_end: connectedAtEnd, active_conversations_at_end: activeNow,
    arrivals, departures, abandoned_in_queue: abandoned, ended,
    window_secs: Math.round(secs * 10) / 10,
    relayed_per_s: Math.round(w.received / secs),
    latency: w.hist.summary(true),
    claim: claimWindow.summary(false), claims_in_window: claimHist.n - claimsBefore,
    start: startHist.summary(false),
    queue_updates: {
      youth_events_per_s: Math.round((q1.youth_queue_events - q0.youth_queue_events) / secs),
      youth_bytes_per_s: Math.round((q1.youth_queue_bytes - q0.youth_queue_bytes) / secs),
      staff_events_per_s: Math.round((q1.staff_queue_events - q0.staff_queue_events) / secs),
      staff_bytes_per_s: Math.round((q1.staff_queue_bytes - q0.staff_queue_bytes) / secs),
      staff_snapshots_per_s: Math.round((q1.staff_queue_snapshots - q0.staff_queue_snapshots) / secs),
      staff_resyncs: q1.staff_queue_resyncs - q0.staff_queue_resyncs,
    },
    server_cpu_pct: Math.round((100 * (cpu1 - cpu0)) / secs),
    received: w.received, cpu_secs_by_process: w.cpu,
    claims_cross_node: counters.claims_cross_node, claims_placed: counters.claims_placed,
    rss_mb: { staff_only: rssStaff / 1024, ramped: rssRamped / 1024, end: rssKb() / 1024 },
  };
}

// ---------------------------------------------------------------- main

const SCENARIOS = { failover: scenarioFailover, relay: scenarioRelay, ramp: scenarioRamp, storm: scenarioStorm, claims: scenarioClaims, peak: scenarioPeak };

async function main() {
  const fn = SCENARIOS[plan.scenario];
  if (!fn) throw new Error(`unknown scenario ${plan.scenario}`);
  const hardStop = setTimeout(() => {
    process.stdout.write(JSON.stringify({ fatal: 'time limit reached', max_secs: plan.max_secs }) + '\n');
    process.exit(3);
  }, (plan.max_secs || 600) * 1000);
  const started = Date.now();
  let result;
  let fatal = null;
  try {
    result = await fn();
  } catch (e) {
    fatal = String(e && e.stack || e);
    log('fatal:', fatal);
  }
  // whatever is still known: every directed pair is accounted once
  for (const ep of endpoints.values()) {
    account(ep, true);
    if (ep.missing) counters.never_arrived_in_gap += ep.missing.size;
  }
  clearInterval(sampler);
  sample();
  clearTimeout(hardStop);
  const out = {
    stack: STACK, scenario: plan.scenario, label: plan.label, started_at: new Date(started).toISOString(),
    duration_secs: Math.round((Date.now() - started) / 100) / 10,
    result, fatal,
    integrity: {
      sent: counters.sent, received: counters.received, lost: counters.lost,
      duplicated: counters.duplicated, out_of_order: counters.out_of_order,
      undelivered_at_cutoff: counters.undelivered_at_cutoff,
      dropped_by_end: counters.dropped_by_end,
      arrived_late_dropped: counters.arrived_late_dropped,
      stranded_by_server_disconnect: counters.stranded_by_server_disconnect,
      never_arrived_in_gap: counters.never_arrived_in_gap,
      redelivered_after_reconnect: counters.redelivered, stray: counters.stray,
    },
    errors, refusals,
    counters, lost_examples: lostExamples, odd_boxes: oddBoxes,
    ws: stats,
    relay_all: relayAll.summary(false),
    send_ack: sendAckHist.summary(false),
    generator_loop_delay_ms: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    timeline,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

main();
