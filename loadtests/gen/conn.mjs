// Client connections that speak the wire protocols directly over `ws`:
//  - SioConn: engine.io v4 + socket.io v5 (text packets only), as
//    socket.io-client 4 does over its WebSocket transport;
//  - BareConn: the bare aiohttp baseline's JSON frames.
// Both expose the same small API: open(), call(event, data) -> Promise(reply),
// emit(event, data), onEvent = (event, data) => {}, onClose = () => {}, drop().
import crypto from 'node:crypto';
import WebSocket from 'ws';

const CALL_TIMEOUT_MS = 30000;

// What a browser offers: permessage-deflate with client_max_window_bits. The
// generator never compresses its own (small) frames — threshold above any frame
// — but must inflate what a server that accepted the offer sends.
function wsOptions(headers, deflate) {
  return {
    headers,
    perMessageDeflate: deflate ? { threshold: 1 << 30, clientMaxWindowBits: true } : false,
    handshakeTimeout: 30000,
    maxPayload: 4 << 20,
  };
}

class BaseConn {
  constructor(stats) {
    this.stats = stats;
    this.ackSeq = 0;
    this.pending = new Map();
    this.onEvent = null;
    this.onClose = null;
    this.ws = null;
    this.closed = false;
    this.dropping = false;
  }

  _settleAll(reason) {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: reason });
    }
    this.pending.clear();
  }

  _track(id, resolve) {
    const timer = setTimeout(() => {
      if (this.pending.delete(id)) resolve({ ok: false, error: 'timeout' });
    }, CALL_TIMEOUT_MS);
    this.pending.set(id, { resolve, timer });
  }

  _ack(id, reply) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(reply);
  }

  _wire(ws) {
    this.ws = ws;
    ws.on('close', () => {
      this.closed = true;
      this._settleAll(this.dropping ? 'dropped' : 'closed');
      if (this.onClose) this.onClose(this.dropping);
    });
    ws.on('error', (err) => {
      this.stats.wsErrors += 1;
      if (this.stats.lastWsError === undefined) this.stats.lastWsError = String(err.message || err);
    });
  }

  send(text) {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    this.stats.framesOut += 1;
    return true;
  }

  // Abrupt drop (no close handshake), like a phone losing its network.
  drop() {
    this.dropping = true;
    if (this.ws) this.ws.terminate();
  }

  close() {
    this.dropping = true;
    if (this.ws && !this.closed) this.ws.close();
  }
}

export class SioConn extends BaseConn {
  // base: http://host:port ; ns: '/youth' | '/staff'
  constructor(base, ns, headers, stats, deflate) {
    super(stats);
    this.url = base.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
    this.ns = ns;
    this.headers = headers;
    this.deflate = deflate;
    this.prefix = ns === '/' ? '' : ns + ',';
  }

  open() {
    return new Promise((resolve) => {
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        resolve(err);
      };
      const ws = new WebSocket(this.url, wsOptions(this.headers, this.deflate));
      this._wire(ws);
      this._connected = finish;
      ws.on('message', (data) => this._onMessage(data.toString()));
      ws.on('close', () => finish('closed before connect'));
      ws.on('error', (err) => finish(String(err.message || err)));
    });
  }

  _onMessage(s) {
    this.stats.framesIn += 1;
    this.stats.bytesIn += s.length;
    const c = s.charCodeAt(0);
    if (c === 52) { // '4' engine.io message
      this._onSio(s);
    } else if (c === 50) { // '2' ping -> pong
      this.ws.send('3' + s.slice(1));
    } else if (c === 48) { // '0' open -> connect to the namespace
      this.ws.send('40' + this.prefix);
    }
  }

  _onSio(s) {
    const type = s.charCodeAt(1) - 48;
    let i = 2;
    if (s.charCodeAt(i) === 47) { // '/' namespace
      const j = s.indexOf(',', i);
      i = j < 0 ? s.length : j + 1;
    }
    let j = i;
    while (j < s.length) {
      const d = s.charCodeAt(j);
      if (d < 48 || d > 57) break;
      j += 1;
    }
    const id = j > i ? Number(s.slice(i, j)) : -1;
    const body = j < s.length ? JSON.parse(s.slice(j)) : undefined;
    if (type === 2) {
      if (this.onEvent) this.onEvent(body[0], body[1]);
    } else if (type === 3) {
      this._ack(id, body[0]);
    } else if (type === 0) {
      if (this._connected) this._connected(null);
    } else if (type === 4) {
      if (this._connected) this._connected((body && body.message) || 'connect_error');
    } else if (type === 1) {
      this.ws.terminate();
    }
  }

  call(event, data) {
    return new Promise((resolve) => {
      const id = ++this.ackSeq;
      if (!this.send('42' + this.prefix + id + JSON.stringify([event, data]))) {
        resolve({ ok: false, error: 'closed' });
        return;
      }
      this._track(id, resolve);
    });
  }

  emit(event, data) {
    this.send('42' + this.prefix + JSON.stringify([event, data]));
  }
}

export class BareConn extends BaseConn {
  constructor(base, ns, headers, stats, deflate) {
    super(stats);
    this.url = base.replace(/^http/, 'ws') + '/ws';
    this.headers = headers;
    this.deflate = deflate;
  }

  open() {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url, wsOptions(this.headers, this.deflate));
      this._wire(ws);
      let done = false;
      ws.on('open', () => { done = true; resolve(null); });
      ws.on('message', (data) => {
        const s = data.toString();
        this.stats.framesIn += 1;
        this.stats.bytesIn += s.length;
        const f = JSON.parse(s);
        if (f.t === 'ack') this._ack(f.id, f.d);
        else if (this.onEvent) this.onEvent(f.t, f.d);
      });
      ws.on('close', () => { if (!done) { done = true; resolve('closed before open'); } });
      ws.on('error', (err) => { if (!done) { done = true; resolve(String(err.message || err)); } });
    });
  }

  call(event, data) {
    return new Promise((resolve) => {
      const id = ++this.ackSeq;
      if (!this.send(JSON.stringify({ t: event, id, d: data }))) {
        resolve({ ok: false, error: 'closed' });
        return;
      }
      this._track(id, resolve);
    });
  }

  emit(event, data) {
    this.send(JSON.stringify({ t: event, d: data }));
  }
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), as pyotp and authenticator apps do.
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function totp(secretB32, atMs = Date.now()) {
  const counter = Math.floor(atMs / 1000 / 30);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', base32Decode(secretB32)).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(code).padStart(6, '0');
}

// POST /staff/api/login -> the __Host-session cookie, as "name=value".
export async function login(base, origin, account) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await loginOnce(base, origin, account);
    } catch (e) {
      // 429: argon2 slots busy (LoginGuard) — wait as told and try again
      if (!e.retryAfter || attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 1000 * e.retryAfter));
    }
  }
}

async function loginOnce(base, origin, account) {
  const res = await fetch(base + '/staff/api/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: origin },
    body: JSON.stringify({
      username: account.username,
      password: account.password,
      totp: totp(account.totp_secret),
    }),
  });
  let body = {};
  try { body = await res.json(); } catch { /* reported below */ }
  if (!res.ok || !body.ok) {
    const err = new Error(`login ${account.username}: HTTP ${res.status} ${body.error || ''}`);
    if (res.status === 429 && body.error === 'rate_limited') err.retryAfter = (body.info && body.info.retry_after_secs) || 1;
    throw err;
  }
  const cookies = res.headers.getSetCookie();
  const session = cookies.map((c) => c.split(';')[0]).find((c) => c.startsWith('__Host-session='));
  if (!session) throw new Error(`login ${account.username}: no session cookie`);
  return session;
}
