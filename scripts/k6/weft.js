// weft.js: a small k6 script for weft's client endpoints (docs/protocol.md): POST /api/<method>
// at a fixed arrival rate, and WebSocket sessions on /ws that send requests and time the
// replies while events arrive. Run it against `weft dev`:
//
//   weft dev &                        # edge on 127.0.0.1:8080, origin on 127.0.0.1:8081
//   k6 run scripts/k6/weft.js
//
// Environment (k6 -e NAME=value): WEFT_URL (the edge or proxy, default http://127.0.0.1:8080),
// WEFT_ORIGIN (the reference origin, default http://127.0.0.1:8081; the script lists the
// team's users from it), WEFT_TEAM (default T00000000), WEFT_TOKEN_SECRET (default: the dev
// stack's public secret), WEFT_RATE (API requests per second, default 100), WEFT_VUS
// (WebSocket sessions, default 20), WEFT_DURATION (default 30s).
//
// Tokens are minted here (HS256 JWTs with sub, team and exp: docs/protocol.md section 1), so a
// run needs nothing but the URLs and the secret.

import http from 'k6/http';
import ws from 'k6/ws';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const BASE = __ENV.WEFT_URL || 'http://127.0.0.1:8080';
const ORIGIN = __ENV.WEFT_ORIGIN || 'http://127.0.0.1:8081';
const TEAM = __ENV.WEFT_TEAM || 'T00000000';
const SECRET = __ENV.WEFT_TOKEN_SECRET || 'weft-dev-secret-change-me-please';
const DURATION = __ENV.WEFT_DURATION || '30s';
const SESSION_MS = Number(__ENV.WEFT_SESSION_MS || 10000); // a WebSocket session's length; then the VU opens another

const wsReply = new Trend('weft_ws_reply', true); // ms from a request frame to its reply
const wsEvents = new Counter('weft_ws_events');

export const options = {
  scenarios: {
    api: {
      executor: 'constant-arrival-rate', exec: 'api', rate: Number(__ENV.WEFT_RATE || 100), timeUnit: '1s',
      duration: DURATION, preAllocatedVUs: 20, maxVUs: 200,
    },
    sockets: { executor: 'constant-vus', exec: 'sockets', vus: Number(__ENV.WEFT_VUS || 20), duration: DURATION },
  },
  thresholds: {
    'http_req_duration{kind:api}': ['p(99)<100'],
    weft_ws_reply: ['p(99)<100'],
    checks: ['rate>0.99'],
    // A stalled server makes k6 drop iterations instead of timing them: that must fail too.
    dropped_iterations: ['count==0'],
  },
};

// token mints a client token: base64url(header).base64url(claims).HMAC-SHA256.
export function token(team, user) {
  const b64 = (s) => encoding.b64encode(s, 'rawurl');
  const now = Math.floor(Date.now() / 1000);
  const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = b64(JSON.stringify({ sub: user, team: team, exp: now + 3600, iat: now }));
  const sig = crypto.hmac('sha256', SECRET, `${head}.${claims}`, 'base64rawurl');
  return `${head}.${claims}.${sig}`;
}

// setup lists the team's active users from the origin contract (docs/origin.md).
export function setup() {
  const res = http.get(`${ORIGIN}/origin/v1/teams/${TEAM}/users?limit=1000`);
  check(res, { 'origin lists the team': (r) => r.status === 200 });
  const users = res.json('users').filter((u) => !u.deleted).map((u) => u.id);
  if (users.length === 0) {
    throw new Error(`team ${TEAM} has no active users`);
  }
  return { users };
}

// api: one users.info over HTTP per iteration, as a user of the team.
export function api(data) {
  const me = data.users[(__VU * 31 + __ITER) % data.users.length];
  const other = data.users[(__ITER * 17 + 3) % data.users.length];
  const res = http.post(`${BASE}/api/users.info`, JSON.stringify({ users: [other] }), {
    headers: { Authorization: `Bearer ${token(TEAM, me)}`, 'Content-Type': 'application/json' },
    tags: { kind: 'api' },
  });
  check(res, {
    'api: 200': (r) => r.status === 200,
    'api: ok and the user': (r) => r.json('ok') === true && r.json('users.0.id') === other,
  });
}

// sockets: a WebSocket session that sends a request every 100 ms (users.info, autocomplete or
// users.channels in turn), checks each reply, and counts the events pushed to it.
export function sockets(data) {
  const me = data.users[__VU % data.users.length];
  const url = `${BASE.replace(/^http/, 'ws')}/ws?token=${token(TEAM, me)}`;
  const sent = {};
  let next = 1;
  let hello = null;
  const res = ws.connect(url, { headers: { 'Sec-WebSocket-Protocol': 'weft.v1' } }, (socket) => {
    socket.on('message', (raw) => {
      const f = JSON.parse(raw);
      if (f.type === 'hello') {
        hello = f;
        check(f, { 'ws: hello for my team': (h) => h.team === TEAM && h.user === me });
        socket.setInterval(() => {
          const id = next++;
          const other = data.users[(id * 7) % data.users.length];
          const req = [
            { method: 'users.info', params: { users: [other] } },
            { method: 'autocomplete', params: { query: 'a', limit: 5 } },
            { method: 'users.channels', params: {} },
          ][id % 3];
          sent[id] = { at: Date.now(), method: req.method };
          socket.send(JSON.stringify({ id: id, method: req.method, params: req.params }));
        }, 100);
      } else if (f.type === 'reply') {
        const s = sent[f.id];
        if (s) {
          wsReply.add(Date.now() - s.at, { method: s.method });
          delete sent[f.id];
        }
        check(f, { 'ws: reply ok': (r) => r.ok === true });
      } else if (f.type === 'event') {
        wsEvents.add(1);
      }
    });
    socket.setTimeout(() => socket.close(), SESSION_MS);
  });
  check(res, { 'ws: upgraded (101)': (r) => r && r.status === 101 });
  check(hello, { 'ws: hello received': (h) => h !== null });
}
