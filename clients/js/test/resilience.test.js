// The client when the edge goes away: a crash and a restart, an origin that cannot load a team,
// a drain, a frozen process. These disturb the weft dev they run against, so this file starts its
// own (with a short heartbeat) and runs them one after another. Run: WEFT_BIN=… npm test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, WeftClient, WeftError, backoffWindow } from '../src/client.js';
import { startWeft, waitFor, recordingWebSocket, NodeWebSocket } from '../testutil/weft.js';

const HEARTBEAT_MS = 2000;
const DRAIN_MS = 100; // startWeft's --drain

let weft;
let me; // U00000000 of T00000000
let other; // U00100000 of T00000001
let far; // U00200000 of T00000002: a team no test here loads before the origin-faults test

before(async () => {
  assert.equal(typeof NodeWebSocket, 'function', 'no WebSocket in this Node: run with --experimental-websocket (npm test does)');
  weft = await startWeft({ args: ['--heartbeat', `${HEARTBEAT_MS}ms`] });
  me = weft.tokens.find((t) => t.team === 'T00000000' && t.user === 'U00000000');
  other = weft.tokens.find((t) => t.team === 'T00000001');
  far = weft.tokens.find((t) => t.team === 'T00000002');
  assert.ok(me && other && far, 'weft dev printed tokens for three teams');
  assert.ok(weft.ops && weft.controlURL && weft.page, `ops, control and page URLs parsed:\n${weft.output()}`);
});
after(async () => {
  weft?.thaw();
  await weft?.stop();
});

// A fast schedule, so that a test does not wait on a long backoff window; rand fixed so that a
// wait can be computed exactly.
const fast = { minMs: 100, maxMs: 1000, stableAfterMs: 10000 };
const half = () => 0.5;

/** connect() with this file's defaults; the client is closed when the test ends. */
async function open(t, tok, opts = {}) {
  const c = await connect({ url: weft.ws, token: tok.token, WebSocket: NodeWebSocket, connectTimeoutMs: 20000, backoff: fast, rand: half, ...opts });
  t.after(() => c.close());
  return c;
}

/** Records what a client goes through. */
function watch(c) {
  const w = { seqs: [], texts: new Map(), hellos: [], reconnects: [], states: [] };
  c.on('event', (ev) => { w.seqs.push(ev.seq); if (ev.type === 'message') w.texts.set(ev.seq, ev.text); });
  c.on('hello', (h) => w.hellos.push(h));
  c.on('reconnect', (r) => w.reconnects.push({ ...r, at: Date.now() }));
  c.on('state', (s) => w.states.push(s));
  return w;
}

function strictlyIncreasing(seqs, who) {
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${who}: seq ${seqs[i]} after ${seqs[i - 1]}`);
}

/**
 * Checks that the count messages of an admin post (text) reached the client, each once, within
 * the post's first_seq..last_seq. The live activity may take seqs in between (events of other
 * channels, which this user may not be sent), so the range itself is not the post's.
 */
function deliveredOnce(w, post, text, count) {
  const got = [...w.texts].filter(([, t]) => t === text).map(([seq]) => seq);
  assert.equal(got.length, count, `${count} posted messages delivered, got seqs ${got}`);
  assert.equal(new Set(got).size, count, 'none twice');
  assert.ok(got.every((s) => s >= post.first_seq && s <= post.last_seq), `seqs ${got} within ${post.first_seq}..${post.last_seq}`);
  assert.ok(got.includes(post.first_seq) && got.includes(post.last_seq));
}

/**
 * The event seqs a fresh connection resuming after since is sent, up to and including until:
 * what the client should have received over the same range.
 */
async function replay(tok, since, until) {
  const ws = new NodeWebSocket(`${weft.ws}?token=${tok.token}&since=${since}`, ['weft.v1']);
  const seqs = [];
  let hello = null;
  let failed = null;
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === 'hello') hello = f;
    else if (f.type === 'event') seqs.push(f.seq);
  };
  ws.onerror = (e) => { failed = e; };
  try {
    await waitFor(() => {
      if (failed) throw new Error(`replay socket failed: ${failed.message ?? failed.type}`);
      return hello && seqs.some((s) => s >= until);
    }, { what: `a replay from ${since} to reach ${until}` });
  } finally {
    ws.close();
  }
  assert.equal(hello.resumed, true, 'the replay resumed');
  return seqs.filter((s) => s <= until);
}

/** The team's #general, from the client's boot. */
const general = (c) => c.lastBoot.channels.find((ch) => ch.name === 'general')?.id;

/** A user of the client's team other than itself, who can post to channel. */
async function poster(c, channel) {
  const { members } = await c.channelsMembers({ channel, limit: 100 });
  const id = members.find((m) => m !== c.hello.user);
  assert.ok(id, `${channel} has another member`);
  return id;
}

test('after a crash and a restart of the edge, clients resume: every event once, in order', async (t) => {
  const a = await open(t, me);
  const b = await open(t, other);
  const wa = watch(a);
  const wb = watch(b);
  const chA = general(a);
  const chB = general(b);
  const posterA = await poster(a, chA);
  const posterB = await poster(b, chB);
  await waitFor(() => wa.seqs.length >= 3, { what: 'live events before the crash' });

  const text = `while the edge is down ${Date.now()}`;
  const killed = await weft.control('kill');
  assert.equal(killed.status, 200, JSON.stringify(killed));
  let started = null;
  let sinceA, sinceB, postA, postB;
  try {
    await waitFor(() => a.state === 'reconnecting' && b.state === 'reconnecting', { what: 'both clients to see the edge gone' });
    sinceA = a.seq;
    sinceB = b.seq;
    // A crash says no goodbye.
    assert.equal(wa.reconnects[0].goodbye, undefined);
    assert.ok(wa.reconnects[0].error instanceof WeftError);
    assert.equal(wa.reconnects[0].error.code, 'disconnected');

    // Events the edge is not there to see: they are in the stream, and the new edge replays them.
    postA = await weft.postEvent('T00000000', { type: 'message', channel: chA, user: posterA, text, count: 10 });
    postB = await weft.postEvent('T00000001', { type: 'message', channel: chB, user: posterB, text, count: 10 });
    assert.ok(postA.ok && postB.ok, JSON.stringify([postA, postB]));
    assert.ok(postA.published === 10 && postB.published === 10);
    // Nothing can have reached the clients yet.
    assert.ok(!wa.seqs.includes(postA.first_seq) && !wb.seqs.includes(postB.first_seq));
    assert.equal(wa.hellos.length, 0, 'no hello while the edge is down');
    started = await weft.control('start');
  } finally {
    started ??= await weft.control('start'); // the next tests need an edge
  }
  assert.equal(started.status, 200, JSON.stringify(started));
  await waitFor(() => wa.seqs.includes(postA.last_seq) && wb.seqs.includes(postB.last_seq), { what: 'the posted events after the restart' });

  for (const [w, since, c] of [[wa, sinceA, a], [wb, sinceB, b]]) {
    assert.equal(w.hellos.length, 1, `${c.hello.user}: one new connection`);
    assert.equal(w.hellos[0].resumed, true, 'the reconnect resumed with since');
    assert.equal(w.hellos[0].seq, since, 'a resumed hello starts at since');
    assert.equal(c.state, 'open');
    assert.equal(c.stats.resumes, 1);
    assert.equal(c.stats.boots, 1, 'a resumed connection does not boot again');
    strictlyIncreasing(w.seqs, c.hello.user);
  }
  deliveredOnce(wa, postA, text, 10);
  deliveredOnce(wb, postB, text, 10);
  // Nothing else was missed either: what the clients got after since is what a resume from the
  // same position is sent.
  const after = (w, since, until) => w.seqs.filter((s) => s > since && s <= until);
  assert.deepEqual(after(wa, sinceA, postA.last_seq), await replay(me, sinceA, postA.last_seq));
  assert.deepEqual(after(wb, sinceB, postB.last_seq), await replay(other, sinceB, postB.last_seq));
});

test('close() while reconnecting stops dialing and fails the calls waiting for a connection', async (t) => {
  const rec = recordingWebSocket();
  const c = await open(t, me, { WebSocket: rec.WebSocket, backoff: { minMs: 20, maxMs: 100 } });
  const witness = await open(t, me);
  const killed = await weft.control('kill');
  assert.equal(killed.status, 200, JSON.stringify(killed));
  let dials;
  try {
    await waitFor(() => c.state === 'reconnecting' && rec.sockets.length >= 3, { what: 'a few dials to the dead edge' });
    // A call made while reconnecting waits for a connection; its own timeout still holds.
    await assert.rejects(c.ping({ timeoutMs: 150 }), (e) => e instanceof WeftError && e.code === 'timeout');
    const waiting = c.ping({ timeoutMs: 30000 }).then(() => null, (e) => e);
    dials = rec.sockets.length;
    await c.close();
    assert.equal(c.state, 'closed');
    const err = await waiting;
    assert.ok(err instanceof WeftError, `the waiting call failed: ${err}`);
    assert.equal(err.code, 'closed');
    await c.done;
    assert.equal(c.err, null, 'closed by its owner, not by an error');
  } finally {
    const started = await weft.control('start');
    assert.equal(started.status, 200, JSON.stringify(started));
  }
  // The witness, on a slower schedule, gets back: had the closed client kept dialing, it would
  // have made a new socket by then.
  await waitFor(() => witness.state === 'open' && witness.stats.connects === 2, { what: 'the witness to reconnect' });
  await witness.ping();
  assert.equal(rec.sockets.length, dials, 'no dial after close()');
  assert.ok(rec.sockets.every((s) => s.readyState === NodeWebSocket.CLOSED || s.readyState === NodeWebSocket.CLOSING), 'no socket left open');
});

test('origin down: 503 origin_unavailable is retried after retry_after_ms, then the client connects', async (t) => {
  const set = await weft.setFaults({ down: true });
  assert.equal(set.down, true, JSON.stringify(set));
  const rec = recordingWebSocket();
  const c = new WeftClient({ url: weft.ws, token: far.token, WebSocket: rec.WebSocket, backoff: fast, rand: half, connectTimeoutMs: 30000 });
  t.after(() => c.close());
  const w = watch(c);
  let started;
  try {
    started = c.start();
    started.catch(() => {}); // awaited below
    await waitFor(() => w.reconnects.length >= 2 && rec.sockets.length >= 3, { timeoutMs: 20000, what: 'two refused attempts and a third dial' });
  } finally {
    const healed = await weft.setFaults({ down: false });
    assert.equal(healed.down, false, JSON.stringify(healed));
  }
  for (const [i, r] of w.reconnects.slice(0, 2).entries()) {
    assert.equal(r.attempt, i + 1);
    assert.ok(r.error instanceof WeftError, `reconnect ${i + 1}: ${r.error}`);
    assert.equal(r.error.status, 503);
    assert.equal(r.error.code, 'origin_unavailable');
    assert.ok(r.error.retryAfterMs >= 1000 && r.error.retryAfterMs <= 2000, `retry_after_ms ${r.error.retryAfterMs}: 1–2 s`);
    // backoffDelay: a refusal's retry-after, plus the jittered share of the attempt's window.
    assert.equal(r.waitMs, r.error.retryAfterMs + Math.floor(0.5 * backoffWindow(fast, r.attempt - 1)));
    // and the next dial came no sooner (timers may fire a millisecond early)
    const next = rec.sockets[i + 1];
    assert.ok(next.madeAt - r.at >= r.waitMs - 2, `dial ${i + 2} ${next.madeAt - r.at} ms after the refusal, asked to wait ${r.waitMs}`);
  }
  assert.notEqual(c.state, 'closed', 'a 503 does not stop the client');
  assert.equal(c.err, null);
  // The origin is back, but this edge's breaker still refuses: its adaptive throttle counts the
  // refusals it makes as requests over a 10 s window, so one client knocking every 1-2 s gets
  // through after ~10 s on average, sometimes 20 or more. A new edge (fresh breaker) takes the
  // team at once: the client, still retrying on its own, gets in on its next attempt.
  const restarted = await weft.control('restart');
  assert.equal(restarted.status, 200, JSON.stringify(restarted));
  await started;
  assert.equal(c.state, 'open');
  assert.equal(c.hello.team, 'T00000002');
  assert.equal(c.lastBoot?.self.id, far.user);
  assert.ok(w.states.includes('reconnecting') && !w.states.includes('closed'));
  assert.deepEqual(w.states.slice(-2), ['booting', 'open']);
});

test('drain: goodbye draining, reconnect after exactly reconnect_after_ms, refusals until a restart, then resume', async (t) => {
  const a = await open(t, me);
  const wa = watch(a);
  const ch = general(a);
  const from = await poster(a, ch);
  await waitFor(() => wa.seqs.length >= 1, { what: 'a live event' });

  const text = `while draining ${Date.now()}`;
  const drained = await weft.drain();
  assert.equal(drained.status, 200, JSON.stringify(drained));
  let restarted = null;
  let since, post;
  try {
    await waitFor(() => wa.reconnects.length >= 3, { what: 'the goodbye and two refused attempts' });
    since = a.seq;
    const [bye, ...refused] = wa.reconnects;
    assert.equal(bye.goodbye?.reason, 'draining');
    assert.ok(bye.goodbye.reconnect_after_ms >= DRAIN_MS / 2 && bye.goodbye.reconnect_after_ms < DRAIN_MS,
      `reconnect_after_ms ${bye.goodbye.reconnect_after_ms} in [drain/2, drain)`);
    assert.equal(bye.waitMs, bye.goodbye.reconnect_after_ms, 'a goodbye is waited exactly, no jitter');
    assert.match(String(bye.error?.message), /code 1001/, 'closed going away');
    for (const r of refused.slice(0, 2)) {
      assert.ok(r.error instanceof WeftError, String(r.error));
      assert.equal(r.error.status, 503);
      assert.equal(r.error.code, 'overloaded');
      assert.match(r.error.message, /draining/);
      assert.ok(r.error.retryAfterMs > 0);
      assert.equal(r.waitMs, r.error.retryAfterMs + Math.floor(0.5 * backoffWindow(fast, r.attempt - 1)));
    }
    assert.deepEqual(refused.slice(0, 2).map((r) => r.attempt), [bye.attempt + 1, bye.attempt + 2], 'refusals count as failed attempts');
    assert.equal(wa.hellos.length, 0, 'a drained edge takes no connection');

    post = await weft.postEvent('T00000000', { type: 'message', channel: ch, user: from, text, count: 10 });
    assert.ok(post.ok, JSON.stringify(post));
    // The drained edge stays live for the control endpoint until it is restarted.
    restarted = await weft.control('restart');
  } finally {
    restarted ??= await weft.control('restart'); // the next tests need an edge that serves
  }
  assert.equal(restarted.status, 200, JSON.stringify(restarted));

  await waitFor(() => wa.seqs.includes(post.last_seq), { what: 'the posted events after the restart' });
  assert.equal(wa.hellos.length, 1);
  assert.equal(wa.hellos[0].resumed, true);
  assert.equal(wa.hellos[0].seq, since);
  strictlyIncreasing(wa.seqs, 'drained client');
  deliveredOnce(wa, post, text, 10);
  assert.deepEqual(wa.seqs.filter((s) => s > since && s <= post.last_seq), await replay(me, since, post.last_seq));
});

test('a frozen server: a call times out, the heartbeat drops the silent connection, the client resumes after', async (t) => {
  const a = await open(t, me, { dialTimeoutMs: 1000 });
  const wa = watch(a);
  assert.equal(a.hello.heartbeat_ms, HEARTBEAT_MS, 'weft dev --heartbeat reached the hello');
  await waitFor(() => wa.seqs.length >= 1, { what: 'a live event' });
  let waiting;
  let since;
  try {
    await weft.freeze();
    const t0 = Date.now();
    await assert.rejects(a.ping({ timeoutMs: 300 }), (e) => e instanceof WeftError && e.code === 'timeout');
    const took = Date.now() - t0;
    assert.ok(took >= 290 && took < HEARTBEAT_MS, `the call ended on its own timeout (${took} ms)`);
    // The connection looks open, but nothing answers: the heartbeat notices within two
    // intervals (a ping each interval, each given one interval); bound generously.
    await waitFor(() => wa.reconnects.length >= 1, { timeoutMs: 3 * HEARTBEAT_MS + 5000, what: 'the heartbeat to give up' });
    since = a.seq;
    const r = wa.reconnects[0];
    assert.ok(r.error instanceof WeftError);
    assert.equal(r.error.code, 'timeout');
    assert.match(r.error.message, /heartbeat/);
    assert.equal(r.goodbye, undefined);
    assert.equal(a.state, 'reconnecting');
    // A call made now waits for the next connection.
    waiting = a.ping({ timeoutMs: 30000 }).then((v) => ({ v }), (e) => ({ e }));
    // Dials to the frozen edge get no hello: the dial timeout ends them and they are retried.
    await waitFor(() => wa.reconnects.length >= 2, { timeoutMs: 10000, what: 'a dial to time out' });
    assert.equal(wa.reconnects[1].error?.code, 'timeout');
    assert.match(wa.reconnects[1].error.message, /no hello/);
    assert.equal(wa.hellos.length, 0);
  } finally {
    weft.thaw();
  }
  const got = await waiting;
  assert.deepEqual(got, { v: {} }, `the waiting call: ${got.e}`);
  assert.equal(a.state, 'open');
  assert.equal(wa.hellos.length, 1);
  assert.equal(wa.hellos[0].resumed, true);
  assert.equal(wa.hellos[0].seq, since);
  // Events keep coming, in order, none twice.
  const target = a.seq + 1;
  await waitFor(() => wa.seqs.at(-1) >= target, { what: 'live events after the thaw' });
  strictlyIncreasing(wa.seqs, 'thawed client');
  assert.deepEqual(wa.seqs.filter((s) => s > since && s <= target), await replay(me, since, target));
});
