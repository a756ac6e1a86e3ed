// Tests against a real `weft dev` (env WEFT_BIN). Run: WEFT_BIN=/tmp/jsw/weft npm test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, WeftClient, WeftError, Store, backoffDelay, backoffWindow } from '../src/client.js';
import { startWeft, waitFor, recordingWebSocket, NodeWebSocket, mintToken } from '../testutil/weft.js';

let weft;
let me; // U00000000 of T00000000
const clients = [];

before(async () => {
  assert.equal(typeof NodeWebSocket, 'function', 'no WebSocket in this Node: run with --experimental-websocket (npm test does)');
  weft = await startWeft();
  me = weft.tokens.find((t) => t.team === 'T00000000' && t.user === 'U00000000');
});
after(async () => {
  for (const c of clients) await c.close();
  await weft?.stop();
});

function open(opts = {}) {
  const c = connect({ url: weft.ws, token: me.token, WebSocket: NodeWebSocket, connectTimeoutMs: 20000, ...opts });
  return c.then((cl) => { clients.push(cl); return cl; });
}

test('hello and boot', async () => {
  const states = [];
  const c = await open({ onState: (s) => states.push(s) });
  assert.equal(c.state, 'open');
  assert.equal(c.hello.type, 'hello');
  assert.equal(c.hello.protocol, 'weft.v1');
  assert.equal(c.hello.team, 'T00000000');
  assert.equal(c.hello.user, 'U00000000');
  assert.equal(c.hello.resumed, false);
  assert.ok(c.hello.heartbeat_ms > 0);
  assert.ok(c.lastBoot, 'booted on connect');
  assert.equal(c.lastBoot.self.id, 'U00000000');
  assert.equal(c.lastBoot.team.id, 'T00000000');
  assert.ok(c.lastBoot.channels.length > 0);
  assert.ok(c.lastBoot.seq >= c.hello.seq);
  assert.equal(c.store.user('U00000000')?.id, 'U00000000');
  assert.equal(c.store.team?.id, 'T00000000');
  for (const ch of c.lastBoot.channels) assert.ok(c.store.channel(ch.id));
  assert.deepEqual(states.slice(0, 2), ['booting', 'open']);
  const sb = await open({ skipBoot: true });
  assert.equal(sb.lastBoot, null);
  assert.equal(sb.stats.boots, 0);
});

test('every method of section 4', async () => {
  const c = await open();
  assert.deepEqual(await c.ping(), {});

  const b = await c.boot();
  assert.equal(b.self.id, 'U00000000');
  assert.equal(typeof b.seq, 'number');

  const ui = await c.usersInfo(['U00000001', 'U99']);
  assert.deepEqual(ui.users.map((u) => u.id), ['U00000001']);
  assert.deepEqual(ui.missing, ['U99']);
  for (const k of ['id', 'team', 'name', 'real_name', 'display_name', 'title', 'avatar_url', 'tz', 'is_bot', 'deleted', 'updated']) assert.ok(k in ui.users[0], `user has ${k}`);
  assert.equal(c.store.user('U00000001')?.id, 'U00000001', 'users.info fills the store');

  const p1 = await c.usersList({ limit: 5 });
  assert.equal(p1.users.length, 5);
  assert.ok(p1.next_cursor);
  const p2 = await c.usersList({ cursor: p1.next_cursor, limit: 100 });
  const all = [...p1.users, ...p2.users].map((u) => u.id);
  assert.equal(new Set(all).size, all.length, 'no page repeats an ID');
  assert.equal(p2.next_cursor, '');
  assert.equal(all.length, 20);

  const ci = await c.channelsInfo(['C00000000', 'C99']);
  assert.deepEqual(ci.channels.map((x) => x.id), ['C00000000']);
  assert.deepEqual(ci.missing, ['C99']);
  for (const k of ['id', 'team', 'name', 'topic', 'purpose', 'is_private', 'is_archived', 'created', 'creator', 'member_count', 'updated']) assert.ok(k in ci.channels[0], `channel has ${k}`);

  const m = await c.channelsMembers({ channel: 'C00000000', limit: 3 });
  assert.equal(m.members.length, 3);
  assert.equal(typeof m.next_cursor, 'string');

  const uc = await c.usersChannels();
  assert.ok(uc.channels.includes('C00000000'));
  assert.equal(uc.next_cursor, '');
  const uc2 = await c.usersChannels({ user: 'U00000001', limit: 1 });
  assert.equal(uc2.channels.length, 1);

  const ac = await waitFor(async () => {
    try { return await c.autocomplete({ query: 'sak', types: ['users'], limit: 2 }); } catch (e) { if (e.code === 'overloaded') return null; throw e; }
  }, { what: 'the autocomplete index' });
  assert.ok(ac.results.length >= 1);
  assert.deepEqual(Object.keys(ac.results[0]).sort(), ['id', 'label', 'name', 'score', 'type']);
  assert.equal(ac.results[0].type, 'user');

  // Refusals are WeftErrors with the protocol's code.
  await assert.rejects(c.usersInfo([]), (e) => e instanceof WeftError && e.code === 'invalid_request');
  await assert.rejects(c.channelsMembers({ channel: 'C99' }), (e) => e.code === 'not_found');
  await assert.rejects(c.call('nope'), (e) => e.code === 'unknown_method');
  // A call can be aborted.
  await assert.rejects(c.ping({ signal: AbortSignal.abort() }), (e) => e.code === 'aborted');
});

test('a refused token stops connect at once', async () => {
  const bad = me.token.slice(0, -4) + 'AAAA';
  const t0 = Date.now();
  await assert.rejects(connect({ url: weft.ws, token: bad, WebSocket: NodeWebSocket, connectTimeoutMs: 20000 }),
    (e) => e instanceof WeftError && e.code === 'invalid_auth' && e.status === 401);
  assert.ok(Date.now() - t0 < 10000);
  // and the client stops: no retry, the reason kept
  const rec = recordingWebSocket();
  const reconnects = [];
  const c = new WeftClient({ url: weft.ws, token: bad, WebSocket: rec.WebSocket, onReconnect: (r) => reconnects.push(r) });
  await assert.rejects(c.start(), (e) => e.code === 'invalid_auth');
  await c.done;
  assert.equal(c.state, 'closed');
  assert.equal(c.err?.code, 'invalid_auth');
  assert.equal(reconnects.length, 0);
  assert.equal(rec.sockets.length, 1);
});

test('an event reaches listeners with its annotations already in the store', async () => {
  const c = await open();
  // A member of #general the client has not been sent yet (ID lists do not count as sent).
  const { members } = await c.channelsMembers({ channel: 'C00000000', limit: 100 });
  const text = `js-annotation-${Date.now()}`;
  let seen = null;
  const carriedBefore = new Set(); // users some earlier event carried
  c.on('event', (ev) => {
    if (ev.type !== 'message' || ev.text !== text) {
      for (const id of Object.keys(ev.annotations.users)) carriedBefore.add(id);
      if (ev.user) carriedBefore.add(ev.user.id);
      return;
    }
    seen = { ev, inStore: c.store.user(ev.userId), channelInStore: c.store.channel(ev.channelId), renderable: c.store.renderable(ev) };
  });
  let poster = null;
  for (const id of members) {
    if (id === 'U00000000' || c.store.user(id)) continue;
    const r = await weft.postEvent('T00000000', { type: 'message', channel: 'C00000000', user: id, text });
    if (r.ok) { poster = id; break; }
  }
  assert.ok(poster, 'some member of #general not in the store could post');
  await waitFor(() => seen, { what: 'the posted message' });
  assert.equal(seen.ev.userId, poster);
  assert.ok(seen.inStore, 'the sender was in the store when the listener ran');
  assert.equal(seen.inStore.id, poster);
  assert.ok(seen.channelInStore);
  assert.ok(seen.renderable);
  // The store got it from this event's annotations (or, racing live activity, an earlier event's).
  assert.ok(seen.ev.annotations.users[poster] || carriedBefore.has(poster), 'the sender came attached to an event');
});

test('resume after a drop: no event missed or repeated', async () => {
  const rec = recordingWebSocket();
  const reconnects = [];
  const a = await open({ WebSocket: rec.WebSocket, onReconnect: (r) => reconnects.push(r), backoff: { minMs: 200 } });
  const b = await open(); // a witness that stays connected
  const seqA = [];
  const seqB = [];
  a.on('event', (ev) => seqA.push(ev.seq));
  b.on('event', (ev) => seqB.push(ev.seq));
  const hellos = [];
  a.on('hello', (h) => hellos.push(h));

  const start = Math.max(a.seq, b.seq);
  await waitFor(() => seqA.length >= 5, { what: 'events before the drop' });
  rec.sockets.at(-1).close(); // drop the connection under the client
  // Events keep coming while it is away; make sure some are for this user.
  const text = `while away ${Date.now()}`;
  const posted = [];
  a.on('event', (ev) => { if (ev.text === text) posted.push(ev.seq); });
  const post = await weft.postEvent('T00000000', { type: 'message', channel: 'C00000000', user: 'U00000001', text, count: 20 });
  assert.ok(post.ok, JSON.stringify(post));
  await waitFor(() => hellos.length >= 1 && a.state === 'open', { what: 'the reconnect' });
  assert.equal(hellos[0].resumed, true, 'the reconnect resumed with since');
  assert.equal(reconnects.length, 1);
  assert.equal(rec.sockets.length, 2);
  await waitFor(() => seqA.includes(post.last_seq) && seqB.includes(post.last_seq), { what: 'both clients to reach the posted events' });
  const end = post.last_seq;
  const inRange = (s) => s.filter((x) => x > start && x <= end);
  // strictly increasing: no repeat, in order
  for (let i = 1; i < seqA.length; i++) assert.ok(seqA[i] > seqA[i - 1], `seq ${seqA[i]} after ${seqA[i - 1]}`);
  assert.deepEqual(inRange(seqA), inRange(seqB), 'the dropped client got exactly what the witness got');
  // Live activity may take seqs between the posted ones: count the posted messages themselves.
  assert.equal(posted.length, 20, 'every posted message delivered once');
  assert.ok(posted.every((s) => s >= post.first_seq && s <= post.last_seq));
});

test('goodbye token_expired: reconnects at once with a fresh token from tokenSource, resumed', async () => {
  const short = mintToken('T00000000', 'U00000000', '1s');
  let asked = 0;
  const reconnects = [];
  const hellos = [];
  const c = await open({ tokenSource: async () => (++asked === 1 ? short : me.token), token: undefined,
    onReconnect: (r) => reconnects.push(r), onHello: (h) => hellos.push(h) });
  const seqs = [];
  c.on('event', (ev) => seqs.push(ev.seq));
  // exp + the verifiers' 5 s leeway
  await waitFor(() => reconnects.length >= 1 && c.state === 'open' && hellos.length >= 2, { timeoutMs: 20000, what: 'the goodbye and the reconnect' });
  assert.equal(reconnects[0].goodbye?.reason, 'token_expired');
  assert.equal(reconnects[0].waitMs, 0, 'token_expired: reconnect at once');
  assert.equal(hellos[1].resumed, true);
  assert.equal(asked, 2);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
});

test('close rejects waiting calls and ends the event iterator', async () => {
  const c = await open();
  const it = c.events();
  const first = await it.next();
  assert.equal(first.done, false);
  assert.equal(typeof first.value.seq, 'number');
  const pending = it.next();
  await c.close();
  assert.equal(c.state, 'closed');
  // pending resolves either with an event delivered before close or done
  await pending;
  await assert.rejects(c.ping(), (e) => e.code === 'closed');
});

test('backoff: full jitter windows and goodbye hints (no server)', () => {
  const b = { minMs: 500, maxMs: 30000, stableAfterMs: 10000 };
  assert.equal(backoffWindow(b, 0), 500);
  assert.equal(backoffWindow(b, 3), 4000);
  assert.equal(backoffWindow(b, 20), 30000);
  assert.equal(backoffDelay(b, 5, { afterMs: 1234, goodbye: true }, () => 0.99), 1234);
  assert.equal(backoffDelay(b, 0, { afterMs: 1000, goodbye: false }, () => 0.5), 1250);
  assert.equal(backoffDelay(b, 1, { afterMs: 0, goodbye: false }, () => 0.5), 500);
  const s = new Store();
  s.putUsers({ id: 'U1', updated: 5, name: 'new' });
  s.putUsers({ id: 'U1', updated: 3, name: 'old' });
  assert.equal(s.user('U1').name, 'new');
  s.putUsers({ id: 'U1', updated: 5, name: 'same' });
  assert.equal(s.user('U1').name, 'same');
});

test('tokenSource failures are retried with backoff, not fatal', async () => {
  let asked = 0;
  const reconnects = [];
  const c = await open({
    token: undefined,
    tokenSource: () => {
      asked++;
      if (asked === 1) throw new Error('token service down');
      if (asked === 2) return Promise.reject(new Error('token service still down'));
      return me.token;
    },
    onReconnect: (r) => reconnects.push(r),
    backoff: { minMs: 20, maxMs: 50 },
  });
  assert.equal(asked, 3);
  assert.equal(c.state, 'open');
  assert.equal(c.stats.connects, 1);
  assert.deepEqual(reconnects.map((r) => r.attempt), [1, 2]);
  for (const [i, why] of [[0, 'token service down'], [1, 'token service still down']]) {
    const e = reconnects[i].error;
    assert.ok(e instanceof WeftError, String(e));
    assert.match(e.message, /tokenSource failed/);
    assert.equal(e.cause?.message, why);
  }
});

test('events wait for the first listener; a full queue pauses the connection until one comes, then resumes', async () => {
  const rec = recordingWebSocket();
  const reconnects = [];
  const hellos = [];
  // No event listener at all: events are kept, up to eventQueue.
  const c = await open({ WebSocket: rec.WebSocket, eventQueue: 3, onReconnect: (r) => reconnects.push(r), onHello: (h) => hellos.push(h), rand: () => 0 });
  hellos.length = 0; // the first connection's
  const witness = await open();
  const seen = [];
  witness.on('event', (ev) => seen.push(ev.seq));
  await waitFor(() => reconnects.length >= 1, { what: 'the event queue to overflow' });
  assert.equal(reconnects[0].error?.code, 'disconnected');
  assert.match(reconnects[0].error.message, /event queue full/);
  assert.equal(c.state, 'reconnecting');
  const pausedAt = c.seq;
  // While nobody listens it does not dial again: let the witness see a few more events.
  const n = seen.length;
  await waitFor(() => seen.length >= n + 3, { what: 'live events meanwhile' });
  assert.equal(rec.sockets.length, 1, 'paused: no new connection while nobody listens');
  assert.equal(hellos.length, 0);

  const got = [];
  c.on('event', (ev) => got.push(ev.seq));
  await waitFor(() => c.state === 'open' && got.some((s) => s > pausedAt), { what: 'the resume once a listener came' });
  assert.equal(rec.sockets.length, 2);
  assert.equal(hellos.length, 1);
  assert.equal(hellos[0].resumed, true);
  assert.equal(hellos[0].seq, pausedAt, 'resumed after the last event kept');
  // The kept events (the queue's 3 and the one that overflowed it) come first, in order.
  const kept = got.filter((s) => s <= pausedAt);
  assert.equal(kept.length, 4);
  assert.equal(kept.at(-1), pausedAt);
  for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `seq ${got[i]} after ${got[i - 1]}`);
  // Nothing was lost across the pause: the witness's events in the same range are all there.
  const end = Math.min(got.at(-1), witness.seq);
  const from = Math.max(kept[0], seen[0] ?? Infinity);
  const inRange = (s) => s.filter((x) => x >= from && x <= end);
  assert.deepEqual(inRange(got), inRange(seen));
});

test('a listener that throws does not stop delivery: the error goes to error listeners', async () => {
  const c = await open();
  const errors = [];
  const got = [];
  c.on('error', (e) => errors.push(e));
  c.on('event', () => { throw new Error('render failed'); });
  c.on('event', (ev) => got.push(ev.seq));
  await waitFor(() => got.length >= 2, { what: 'two events' });
  assert.ok(errors.length >= 2);
  assert.equal(errors[0].message, 'render failed');
  assert.equal(c.state, 'open');
});
