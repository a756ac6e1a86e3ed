// @weft/client: a JavaScript client for weft's WebSocket protocol weft.v1 (docs/protocol.md).
// It follows the Go client (client/): it connects, reads the hello, boots, keeps a store of the
// users and channels the edge sent it (newest `updated` wins), hands every event over once and
// in order with its annotations already merged into the store, resumes with `since` after a
// drop, and reconnects with full-jitter backoff that honours goodbyes and Retry-After.
//
// No runtime dependencies: it needs a WHATWG WebSocket (globalThis.WebSocket, or pass one) and,
// optionally, fetch (to diagnose refused handshakes, see `diagnose`).

import { Store, decodeEvent } from './store.js';
import { backoffDelay } from './backoff.js';

export { Store, decodeEvent } from './store.js';
export { backoffWindow, backoffDelay } from './backoff.js';

export const PROTOCOL = 'weft.v1';

/**
 * @typedef {{id: string, team: string, name: string, real_name: string, display_name: string,
 *   title: string, avatar_url: string, tz: string, is_bot: boolean, deleted: boolean,
 *   updated: number}} User
 * @typedef {{id: string, team: string, name: string, topic: string, purpose: string,
 *   is_private: boolean, is_archived: boolean, created: string, creator: string,
 *   member_count: number, updated: number}} Channel
 * @typedef {{id: string, name: string, domain: string, user_count: number,
 *   channel_count: number, updated: number}} Team
 * @typedef {{type: 'hello', protocol: string, session: string, team: string, user: string,
 *   node: string, region: string, seq: number, resumed: boolean, heartbeat_ms: number}} Hello
 * @typedef {{type: 'goodbye', reason: string, reconnect_after_ms: number}} Goodbye
 * @typedef {{self: User, team: Team, channels: Channel[], seq: number}} Boot
 * @typedef {{users: Record<string, User>, channels: Record<string, Channel>}} Annotations
 * @typedef {{seq: number, type: string, user?: User, team?: Team, channel?: Channel,
 *   userId: string, channelId: string, ts: string, text: string, clientMsgId: string,
 *   mentions: string[], updated?: number, annotations: Annotations, raw: any, cut: string}} WeftEvent
 * @typedef {{attempt: number, waitMs: number, error?: any, goodbye?: Goodbye}} ReconnectInfo
 * @typedef {'connecting'|'booting'|'open'|'reconnecting'|'closed'} State
 * @typedef {{timeoutMs?: number, signal?: AbortSignal}} CallOptions
 * @typedef {import('./backoff.js').BackoffOptions} BackoffOptions
 */

/** Error codes of docs/protocol.md section 8, plus the client's own. */
export const Codes = Object.freeze({
  invalidRequest: 'invalid_request', unknownMethod: 'unknown_method', notFound: 'not_found',
  invalidAuth: 'invalid_auth', accountInactive: 'account_inactive', rateLimited: 'rate_limited',
  overloaded: 'overloaded', originUnavailable: 'origin_unavailable', tooLarge: 'too_large',
  internal: 'internal',
  // client-side
  disconnected: 'disconnected', closed: 'closed', timeout: 'timeout', aborted: 'aborted',
});

/** An error the server answered (a reply with ok:false, a refused handshake) or a client-side one. */
export class WeftError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{retryAfterMs?: number, status?: number, cause?: any}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message ? `weft: ${code}: ${message}` : `weft: ${code}`);
    this.name = 'WeftError';
    /** @type {string} */ this.code = code;
    /** @type {number} */ this.retryAfterMs = extra.retryAfterMs ?? 0;
    /** @type {number} */ this.status = extra.status ?? 0;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}

// ---------------------------------------------------------------------------------------------
// URL helpers

/** Normalises ws(s)/http(s) URLs; a URL without a path gets /ws. */
export function normalURL(/** @type {string} */ raw) {
  const u = new URL(raw);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new WeftError(Codes.invalidRequest, `URL ${raw}: scheme must be ws, wss, http or https`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  return u;
}

const sleep = (/** @type {number} */ ms, /** @type {AbortSignal} */ signal) => new Promise((resolve) => {
  if (signal.aborted) return resolve(undefined);
  const t = setTimeout(done, ms);
  function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(undefined); }
  signal.addEventListener('abort', done, { once: true });
});

// ---------------------------------------------------------------------------------------------
// Connection

/** One WebSocket connection: its hello, its requests in flight. Internal. */
class Conn {
  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    /** @type {Hello | null} */ this.hello = null;
    this.nextId = 0;
    /** @type {Map<number, {resolve: (v: any) => void, reject: (e: any) => void}>} */ this.pending = new Map();
    /** @type {Goodbye | null} */ this.goodbye = null;
    this.ended = false;
    /** @type {any} */ this.endErr = null;
    this.closeCode = 0;
    /** @type {(() => void) | null} */ this.onEnd = null;
    this.heartbeat = /** @type {any} */ (null);
    /** @type {any[]} frames that came after the hello before serve() took over */ this.early = [];
  }
  /** Ends the connection now: pending requests fail, handlers are detached. */
  end(/** @type {any} */ err) {
    if (this.ended) return;
    this.ended = true;
    this.endErr = err;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const p of this.pending.values()) p.reject(new WeftError(Codes.disconnected, 'connection lost before the reply', { cause: err }));
    this.pending.clear();
    try { this.ws.onmessage = null; this.ws.onclose = null; this.ws.onerror = null; this.ws.onopen = null; } catch { /* ignore */ }
    try { if (this.ws.readyState <= 1) this.ws.close(1000, 'client'); } catch { /* ignore */ }
    const f = this.onEnd;
    this.onEnd = null;
    if (f) f();
  }
  /** Sends one request and waits for its reply. */
  request(/** @type {string} */ method, /** @type {any} */ params, /** @type {number} */ timeoutMs, /** @type {AbortSignal | undefined} */ signal) {
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new WeftError(Codes.disconnected, 'connection lost'));
      const id = ++this.nextId;
      /** @type {any} */ let timer = null;
      const cleanup = () => { if (timer) clearTimeout(timer); signal?.removeEventListener('abort', onAbort); this.pending.delete(id); };
      const onAbort = () => { cleanup(); reject(new WeftError(Codes.aborted, `${method} aborted`, { cause: signal?.reason })); };
      if (signal?.aborted) return onAbort();
      this.pending.set(id, {
        resolve: (v) => { cleanup(); resolve(v); },
        reject: (e) => { cleanup(); reject(e); },
      });
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) timer = setTimeout(() => { cleanup(); reject(new WeftError(Codes.timeout, `${method}: no reply within ${timeoutMs} ms`)); }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      /** @type {any} */
      const req = { id, method };
      if (params !== undefined && params !== null) req.params = params;
      try { this.ws.send(JSON.stringify(req)); } catch (err) { cleanup(); reject(new WeftError(Codes.disconnected, String(err), { cause: err })); }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/**
 * @typedef {{
 *   url: string,
 *   token?: string,
 *   tokenSource?: () => string | Promise<string>,
 *   WebSocket?: any,
 *   fetch?: any,
 *   skipBoot?: boolean,
 *   diagnose?: boolean,
 *   callTimeoutMs?: number,
 *   dialTimeoutMs?: number,
 *   connectTimeoutMs?: number,
 *   signal?: AbortSignal,
 *   eventQueue?: number,
 *   backoff?: BackoffOptions,
 *   rand?: () => number,
 *   onState?: (state: State) => void,
 *   onEvent?: (ev: WeftEvent) => void,
 *   onHello?: (h: Hello) => void,
 *   onBoot?: (b: Boot) => void,
 *   onReconnect?: (r: ReconnectInfo) => void,
 * }} ClientOptions
 */

/**
 * A connection to weft that stays connected. Listen with `on(name, fn)`:
 * 'event' (WeftEvent), 'hello' (Hello), 'boot' (Boot), 'state' (State), 'reconnect'
 * (ReconnectInfo), 'error' (an exception thrown by a listener, or a warning), 'close' (the
 * error that stopped the client, or null after close()).
 */
export class WeftClient {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    if (!opts || !opts.url) throw new WeftError(Codes.invalidRequest, 'url is required');
    if (!opts.token && !opts.tokenSource) throw new WeftError(Codes.invalidRequest, 'token or tokenSource is required');
    this.opts = opts;
    this.url = normalURL(opts.url);
    this.WS = opts.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof this.WS !== 'function') throw new WeftError(Codes.invalidRequest, 'no WebSocket implementation: pass options.WebSocket');
    this.fetch = opts.fetch ?? /** @type {any} */ (globalThis).fetch?.bind(globalThis); // bound: a browser's fetch called as this.fetch() throws Illegal invocation
    this.backoff = { minMs: opts.backoff?.minMs ?? 500, maxMs: opts.backoff?.maxMs ?? 30000, stableAfterMs: opts.backoff?.stableAfterMs ?? 10000 };
    if (this.backoff.maxMs < this.backoff.minMs) this.backoff.maxMs = this.backoff.minMs;
    this.callTimeoutMs = opts.callTimeoutMs ?? 10000;
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 10000;
    this.eventQueue = opts.eventQueue ?? 10000;
    this.rand = opts.rand ?? Math.random;
    this.store = new Store();
    /** @type {State} */ this.state = 'connecting';
    /** @type {Hello | null} */ this.hello = null;
    /** @type {Boot | null} */ this.lastBoot = null;
    /** Stream position: the seq of the last event handed over (or buffered), or the hello's. */
    this.seq = 0;
    this.placed = false;
    this.needBoot = !opts.skipBoot;
    /** @type {any} */ this.err = null;
    this.stats = { connects: 0, resumes: 0, boots: 0, events: 0, duplicates: 0, requests: 0 };
    /** @type {Map<string, Set<Function>>} */ this.listeners = new Map();
    /** @type {WeftEvent[]} events received while nobody listens to 'event' */ this.buffer = [];
    this.pausedForListener = false;
    /** @type {Conn | null} the connection requests go to (open, booted) */ this.conn = null;
    /** @type {Set<() => void>} */ this.readyWaiters = new Set();
    this.abort = new AbortController();
    /** @type {Promise<void>} */ this.done = new Promise((r) => { this.resolveDone = r; });
    /** @type {Promise<void> | null} */ this.started = null;
    /** @type {{resolve: () => void, reject: (e: any) => void} | null} */ this.firstUp = null;
    /** @type {Conn | null} the connection being dialed or served */ this.current = null;
    /** @type {(() => void) | null} */ this.wakeLoop = null;
    if (opts.onEvent) this.on('event', opts.onEvent);
    if (opts.onHello) this.on('hello', opts.onHello);
    if (opts.onBoot) this.on('boot', opts.onBoot);
    if (opts.onState) this.on('state', opts.onState);
    if (opts.onReconnect) this.on('reconnect', opts.onReconnect);
  }

  // --- events ---------------------------------------------------------------------------------

  /** @param {string} name @param {Function} fn @returns {this} */
  on(name, fn) {
    let s = this.listeners.get(name);
    if (!s) this.listeners.set(name, (s = new Set()));
    s.add(fn);
    if (name === 'event' && this.buffer.length > 0) queueMicrotask(() => this.flush());
    if (name === 'event' && this.pausedForListener) { this.pausedForListener = false; this.wakeLoop?.(); }
    return this;
  }
  /** @param {string} name @param {Function} fn @returns {this} */
  off(name, fn) { this.listeners.get(name)?.delete(fn); return this; }
  /** @param {string} name @param {any} v */
  emit(name, v) {
    const s = this.listeners.get(name);
    if (!s) return;
    for (const fn of [...s]) {
      try { fn(v); } catch (err) { if (name !== 'error') this.emit('error', err); }
    }
  }
  hasEventListener() { return (this.listeners.get('event')?.size ?? 0) > 0; }
  flush() {
    while (this.buffer.length > 0 && this.hasEventListener()) this.emit('event', this.buffer.shift());
  }
  /** @param {State} s */
  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  /**
   * An async iterator over events (an alternative to on('event')). Iteration ends at close.
   * @returns {AsyncIterableIterator<WeftEvent>}
   */
  events() {
    /** @type {WeftEvent[]} */ const q = [];
    /** @type {((r: IteratorResult<WeftEvent>) => void) | null} */ let wait = null;
    const fn = (/** @type {WeftEvent} */ ev) => { if (wait) { const w = wait; wait = null; w({ value: ev, done: false }); } else q.push(ev); };
    const end = () => { if (wait) { const w = wait; wait = null; w({ value: undefined, done: true }); } };
    this.on('event', fn);
    this.on('close', end);
    const self = this;
    return {
      [Symbol.asyncIterator]() { return this; },
      next() {
        if (q.length) return Promise.resolve({ value: /** @type {WeftEvent} */ (q.shift()), done: false });
        if (self.state === 'closed') return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => { wait = r; });
      },
      return() { self.off('event', fn); self.off('close', end); end(); return Promise.resolve({ value: undefined, done: true }); },
    };
  }

  // --- life -----------------------------------------------------------------------------------

  /** Starts the client; resolves once the first connection is up (hello read and, unless skipBoot, booted). */
  start() {
    if (this.started) return this.started;
    this.started = new Promise((resolve, reject) => {
      this.firstUp = { resolve, reject };
      const t = this.opts.connectTimeoutMs;
      if (t && t > 0) setTimeout(() => this.failFirst(new WeftError(Codes.timeout, `not connected within ${t} ms`)), t).unref?.();
      this.opts.signal?.addEventListener('abort', () => this.failFirst(new WeftError(Codes.aborted, 'connect aborted')), { once: true });
    });
    this.run().catch((err) => this.stop(err));
    return this.started;
  }
  failFirst(/** @type {any} */ err) {
    if (!this.firstUp) return;
    this.firstUp.reject(err);
    this.firstUp = null;
    this.close();
  }

  /** Closes the connection (normal closure) and stops the client. Pending calls fail with `closed`. */
  async close() {
    if (this.state === 'closed') return;
    this.stop(null);
  }

  /** @param {any} err */
  stop(err) {
    if (this.state === 'closed') return;
    this.err = err;
    this.abort.abort();
    const cn = this.conn;
    this.conn = null;
    if (this.current) this.current.end(new WeftError(Codes.closed, 'client closed'));
    if (cn) cn.end(new WeftError(Codes.closed, 'client closed'));
    for (const w of this.readyWaiters) w();
    this.readyWaiters.clear();
    this.setState('closed');
    if (this.firstUp) { this.firstUp.reject(err ?? new WeftError(Codes.closed, 'client closed')); this.firstUp = null; }
    this.emit('close', err);
    /** @type {any} */ (this).resolveDone();
  }

  async token() {
    if (this.opts.tokenSource) return await this.opts.tokenSource();
    return /** @type {string} */ (this.opts.token);
  }

  /** The run loop: dial, serve until the connection ends, wait, dial again. */
  async run() {
    let attempt = 0;
    let hint = { afterMs: 0, goodbye: false };
    /** @type {any} */ let why = null;
    /** @type {Goodbye | undefined} */ let bye;
    for (let tryN = 0; ; tryN++) {
      if (this.abort.signal.aborted) return;
      if (tryN > 0) {
        const waitMs = backoffDelay(this.backoff, Math.max(attempt - 1, 0), hint, this.rand);
        this.setState('reconnecting');
        this.emit('reconnect', { attempt, waitMs, error: why, goodbye: bye });
        await sleep(waitMs, this.abort.signal);
        if (this.abort.signal.aborted) return;
      }
      while (this.pausedForListener && !this.abort.signal.aborted) {
        await new Promise((r) => { this.wakeLoop = () => r(undefined); this.abort.signal.addEventListener('abort', () => r(undefined), { once: true }); });
      }
      if (this.abort.signal.aborted) return;
      if (tryN === 0) this.setState('connecting');
      hint = { afterMs: 0, goodbye: false };
      bye = undefined;
      let cn;
      try {
        cn = await this.dial();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const e = /** @type {any} */ (err);
        if (e.fatal) return this.stop(e.error ?? e);
        why = e.error ?? e;
        if (e.retryAfterMs > 0) hint = { afterMs: e.retryAfterMs, goodbye: false };
        if (e.goodbye) {
          bye = e.goodbye;
          // Turned away again and again: back off after all (Go: dial error with goodbye).
          hint = attempt >= 2 ? { afterMs: 0, goodbye: false } : { afterMs: e.goodbye.reconnect_after_ms ?? 0, goodbye: true };
        }
        attempt++;
        continue;
      }
      const up = await this.serve(cn);
      if (this.abort.signal.aborted) return;
      bye = cn.goodbye ?? undefined;
      why = cn.endErr;
      if (bye?.reason === 'account_inactive' || cn.closeCode === 4011) {
        return this.stop(new WeftError(Codes.accountInactive, 'the user was deactivated (goodbye account_inactive)', { status: 403 }));
      }
      if (bye && (bye.reconnect_after_ms > 0 || bye.reason === 'moved' || bye.reason === 'token_expired')) {
        hint = { afterMs: bye.reconnect_after_ms ?? 0, goodbye: true };
      }
      if (up > 0 && Date.now() - up >= this.backoff.stableAfterMs) attempt = 0;
      attempt++;
    }
  }

  /**
   * Opens a WebSocket (token in the query, since when placed) and reads its hello.
   * Rejects with {error, fatal?, retryAfterMs?, goodbye?}.
   * @returns {Promise<Conn>}
   */
  async dial() {
    let tok;
    try { tok = await this.token(); } catch (err) {
      throw { error: new WeftError(Codes.internal, `tokenSource failed: ${err}`, { cause: err }) }; // retried, like Go
    }
    const u = new URL(this.url.href);
    u.searchParams.set('token', tok);
    if (this.placed) u.searchParams.set('since', String(this.seq));
    /** @type {WebSocket} */
    const ws = new this.WS(u.href, [PROTOCOL]);
    const cn = new Conn(ws);
    this.current = cn;
    try {
      const hello = await new Promise((resolve, reject) => {
        let opened = false;
        const timer = setTimeout(() => fail({ error: new WeftError(Codes.timeout, `no hello within ${this.dialTimeoutMs} ms`) }), this.dialTimeoutMs);
        const onAbort = () => fail({ error: new WeftError(Codes.closed, 'client closed') });
        this.abort.signal.addEventListener('abort', onAbort, { once: true });
        const fail = (/** @type {any} */ e) => { clearTimeout(timer); this.abort.signal.removeEventListener('abort', onAbort); cn.end(e.error); reject(e); };
        ws.onopen = () => {
          opened = true;
          if (ws.protocol && ws.protocol !== PROTOCOL) fail({ error: new WeftError(Codes.invalidRequest, `the server chose subprotocol ${ws.protocol}, not ${PROTOCOL}`) });
        };
        let failing = false;
        const lost = (/** @type {any} */ ev) => {
          if (failing) return;
          failing = true;
          if (opened) return fail({ error: new WeftError(Codes.disconnected, `closed before hello (code ${ev?.code ?? 'none'})`) });
          // The handshake was refused: a WebSocket does not show why; ask /api (see diagnose).
          this.diagnose(tok).then(fail, () => fail({ error: new WeftError(Codes.disconnected, 'handshake failed') }));
        };
        // Some implementations fire only error, some error then close, for a refused handshake.
        ws.onerror = lost;
        ws.onclose = lost;
        let got = false;
        ws.onmessage = (ev) => {
          // Frames after the hello can be dispatched before serve() takes over (several in one
          // task): keep them for it, in order.
          if (got) { cn.early.push(ev.data); return; }
          got = true;
          let f;
          try { f = JSON.parse(String(ev.data)); } catch { return fail({ error: new WeftError(Codes.internal, 'unreadable first frame') }); }
          if (f.type === 'goodbye') {
            return fail({ error: new WeftError(Codes.disconnected, `the server said goodbye ${f.reason} before hello`), goodbye: f });
          }
          if (f.type !== 'hello') return fail({ error: new WeftError(Codes.internal, 'first frame is not a hello') });
          clearTimeout(timer);
          this.abort.signal.removeEventListener('abort', onAbort);
          resolve(f);
        };
      });
      cn.hello = /** @type {Hello} */ (hello);
      return cn;
    } finally {
      if (this.current === cn && cn.ended) this.current = null;
    }
  }

  /**
   * A WebSocket handshake's refusal is invisible to the page (no status, no body); the same
   * checks run for /api, so a POST /api/ping with the token in the header tells: 401/403 stop
   * the client, 429/503 give Retry-After. Without fetch (or with diagnose:false, or when the
   * browser's CORS rules refuse), the failure is retried with backoff.
   * @param {string} tok
   */
  async diagnose(tok) {
    const plain = { error: new WeftError(Codes.disconnected, 'handshake failed (no answer or refused)') };
    if (this.opts.diagnose === false || typeof this.fetch !== 'function') return plain;
    const u = new URL(this.url.href);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = u.pathname.replace(/\/ws$/, '') + '/api/ping';
    u.search = '';
    let res;
    try {
      res = await this.fetch(u.href, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(this.dialTimeoutMs) });
    } catch { return plain; }
    if (res.ok) return plain; // the API takes us now: the socket failed for another reason
    /** @type {any} */ let body = null;
    try { body = await res.json(); } catch { /* not weft's */ }
    const e = body?.error;
    let retryAfterMs = e?.retry_after_ms ?? 0;
    if (!retryAfterMs) { const s = parseInt(res.headers.get('retry-after') ?? '', 10); if (s > 0) retryAfterMs = s * 1000; }
    const error = new WeftError(e?.code ?? Codes.internal, e?.message ?? `HTTP ${res.status}`, { status: res.status, retryAfterMs });
    return { error, retryAfterMs, fatal: res.status === 401 || res.status === 403 };
  }

  /**
   * Runs one connection: frames, heartbeat, boot when needed; resolves when it ends, with the
   * time it was up (booted and serving), 0 when it never was.
   * @param {Conn} cn
   */
  serve(cn) {
    return new Promise((resolve) => {
      const h = /** @type {Hello} */ (cn.hello);
      let up = 0;
      cn.onEnd = () => {
        if (this.conn === cn) this.conn = null;
        if (this.current === cn) this.current = null;
        resolve(up);
      };
      if (cn.ended) return resolve(0); // lost between its hello and now
      this.current = cn;
      this.stats.connects++;
      if (h.resumed) this.stats.resumes++;
      else if (!this.opts.skipBoot) this.needBoot = true;
      if (!h.resumed && h.seq > this.seq) this.seq = h.seq;
      this.placed = true;
      this.hello = h;
      this.emit('hello', h);
      const ws = cn.ws;
      ws.onmessage = (ev) => this.frame(cn, ev.data);
      ws.onerror = () => {};
      ws.onclose = (ev) => { cn.closeCode = ev.code; cn.end(new WeftError(Codes.disconnected, `connection closed (code ${ev.code}${ev.reason ? ', ' + ev.reason : ''})`)); };
      for (const d of cn.early.splice(0)) this.frame(cn, d);
      if (cn.ended) return;
      if (h.heartbeat_ms > 0) {
        cn.heartbeat = setInterval(() => {
          cn.request('ping', undefined, h.heartbeat_ms, undefined).catch((err) => {
            // No reply at all within the interval: a dead peer. An error reply is a live one.
            if (err?.code === Codes.timeout) cn.end(new WeftError(Codes.timeout, 'heartbeat unanswered'));
          });
        }, h.heartbeat_ms);
        /** @type {any} */ (cn.heartbeat).unref?.();
      }
      const ready = () => {
        if (cn.ended) return;
        this.conn = cn;
        up = Date.now();
        this.setState('open');
        for (const w of this.readyWaiters) w();
        this.readyWaiters.clear();
        if (this.firstUp) { this.firstUp.resolve(); this.firstUp = null; }
      };
      if (this.needBoot) {
        this.setState('booting');
        cn.request('boot', undefined, this.dialTimeoutMs, undefined).then((b) => {
          this.storeBoot(b);
          this.needBoot = false;
          ready();
        }, (err) => {
          // and reconnect: a boot the origin could not serve now may work later
          cn.end(new WeftError(err?.code ?? Codes.internal, `boot: ${err?.message ?? err}`, { cause: err }));
        });
      } else ready();
    });
  }

  /** @param {any} b */
  storeBoot(b) {
    this.store.putUsers(b.self);
    this.store.putTeam(b.team);
    this.store.putChannels(...(b.channels ?? []));
    this.stats.boots++;
    this.lastBoot = b;
    this.emit('boot', b);
  }

  /** @param {Conn} cn @param {any} data */
  frame(cn, data) {
    if (cn.ended) return;
    if (typeof data !== 'string') return; // the server sends text frames only
    let f;
    try { f = JSON.parse(data); } catch {
      // A server that sends garbage is broken: reconnect and resume rather than hand out holes.
      return cn.end(new WeftError(Codes.internal, 'unreadable frame'));
    }
    switch (f?.type) {
      case 'reply': {
        if (typeof f.id !== 'number') { this.emit('error', new WeftError(f.error?.code ?? Codes.internal, `reply without id: ${f.error?.message ?? ''}`)); return; }
        const p = cn.pending.get(f.id);
        if (!p) return; // its caller gave up
        if (f.ok) p.resolve(f.result ?? {});
        else p.reject(new WeftError(f.error?.code ?? Codes.internal, f.error?.message ?? 'reply with ok false and no error', { retryAfterMs: f.error?.retry_after_ms }));
        return;
      }
      case 'event': {
        if (typeof f.seq !== 'number') return;
        if (f.seq <= this.seq) { this.stats.duplicates++; return; }
        const ev = decodeEvent(f);
        this.store.apply(ev); // before anyone sees the event
        this.seq = f.seq;
        this.stats.events++;
        if (this.buffer.length === 0 && this.hasEventListener()) this.emit('event', ev);
        else {
          this.buffer.push(ev);
          if (this.buffer.length > this.eventQueue) {
            // Nobody takes events: stop reading and resume once a listener is there.
            this.pausedForListener = !this.hasEventListener();
            cn.end(new WeftError(Codes.disconnected, 'event queue full: nobody listens to events'));
          }
        }
        return;
      }
      case 'goodbye':
        cn.goodbye = { type: 'goodbye', reason: String(f.reason ?? ''), reconnect_after_ms: Number(f.reconnect_after_ms ?? 0) };
        return;
      default:
        // Additive protocol changes (new frame types) are ignored.
    }
  }

  /** Waits for a connection that serves requests. @param {number} deadline @param {AbortSignal} [signal] @returns {Promise<Conn>} */
  async ready(deadline, signal) {
    for (;;) {
      if (this.state === 'closed') throw this.err ?? new WeftError(Codes.closed, 'client closed');
      if (this.conn && !this.conn.ended) return this.conn;
      if (signal?.aborted) throw new WeftError(Codes.aborted, 'aborted');
      const left = deadline - Date.now();
      if (left <= 0) throw new WeftError(Codes.timeout, 'no connection within the call timeout');
      await new Promise((r) => {
        const t = setTimeout(done, left);
        function done() { clearTimeout(t); signal?.removeEventListener('abort', done); r(undefined); }
        this.readyWaiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  // --- methods (docs/protocol.md section 4) ----------------------------------------------------

  /**
   * Sends any method and resolves with its result. Waits for a connection while reconnecting;
   * the timeout (default callTimeoutMs) covers the wait and the reply.
   * @param {string} method @param {any} [params] @param {CallOptions} [o]
   * @returns {Promise<any>}
   */
  async call(method, params, o = {}) {
    const timeoutMs = o.timeoutMs ?? this.callTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const cn = await this.ready(deadline, o.signal);
    this.stats.requests++;
    return cn.request(method, params, Math.max(1, deadline - Date.now()), o.signal);
  }

  /** @param {CallOptions} [o] @returns {Promise<Boot>} */
  async boot(o) {
    const b = await this.call('boot', undefined, o);
    this.storeBoot(b);
    return b;
  }
  /** @param {string[]} ids @param {CallOptions} [o] @returns {Promise<{users: User[], missing: string[]}>} */
  async usersInfo(ids, o) {
    const r = await this.call('users.info', { users: ids }, o);
    this.store.putUsers(...(r.users ?? []));
    return r;
  }
  /** @param {{cursor?: string, limit?: number}} [p] @param {CallOptions} [o] @returns {Promise<{users: User[], next_cursor: string}>} */
  async usersList(p = {}, o) {
    const r = await this.call('users.list', pageParams(p), o);
    this.store.putUsers(...(r.users ?? []));
    return r;
  }
  /** @param {string[]} ids @param {CallOptions} [o] @returns {Promise<{channels: Channel[], missing: string[]}>} */
  async channelsInfo(ids, o) {
    const r = await this.call('channels.info', { channels: ids }, o);
    this.store.putChannels(...(r.channels ?? []));
    return r;
  }
  /** @param {{channel: string, cursor?: string, limit?: number}} p @param {CallOptions} [o] @returns {Promise<{members: string[], next_cursor: string}>} */
  channelsMembers(p, o) { return this.call('channels.members', { channel: p.channel, ...pageParams(p) }, o); }
  /** @param {{user?: string, cursor?: string, limit?: number}} [p] @param {CallOptions} [o] @returns {Promise<{channels: string[], next_cursor: string}>} */
  usersChannels(p = {}, o) {
    /** @type {any} */ const q = pageParams(p);
    if (p.user) q.user = p.user;
    return this.call('users.channels', q, o);
  }
  /**
   * Quick Switcher; results are not put in the store (they carry names only).
   * @param {{query: string, types?: ('users'|'channels')[], limit?: number, include_inactive?: boolean}} p @param {CallOptions} [o]
   * @returns {Promise<{results: {type: 'user'|'channel', id: string, name: string, label: string, score: number}[]}>}
   */
  autocomplete(p, o) { return this.call('autocomplete', p, o); }
  /** @param {CallOptions} [o] @returns {Promise<{}>} */
  ping(o) { return this.call('ping', undefined, o); }

  /** Shorthands for the store. @param {string} id */
  user(id) { return this.store.user(id); }
  /** @param {string} id */
  channel(id) { return this.store.channel(id); }
}

function pageParams(/** @type {{cursor?: string, limit?: number}} */ p) {
  /** @type {any} */ const q = {};
  if (p.cursor) q.cursor = p.cursor;
  if (p.limit) q.limit = p.limit;
  return q;
}

/**
 * Creates a client, starts it and resolves once its first connection is up (hello read and,
 * unless skipBoot, booted). Rejects at once when the server refuses the token (seen through
 * `diagnose`), or on connectTimeoutMs / signal.
 * @param {ClientOptions} opts
 * @returns {Promise<WeftClient>}
 */
export async function connect(opts) {
  const c = new WeftClient(opts);
  await c.start();
  return c;
}
