// Test harness: starts a real `weft dev` (path from env WEFT_BIN), parses what it prints, and
// stops it (SIGTERM, then SIGKILL). Loopback only.
import { spawn, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

/** Polls cond until it is truthy or the deadline passes. */
export async function waitFor(cond, { timeoutMs = 15000, everyMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A WebSocket for Node: the built-in one (Node 22+, or Node 20 with --experimental-websocket). */
export const NodeWebSocket = globalThis.WebSocket;

/** Wraps a WebSocket constructor and records every socket made (and when), so a test can drop one. */
export function recordingWebSocket(Base = NodeWebSocket) {
  const sockets = [];
  class Recording extends Base {
    constructor(url, protocols) { super(url, protocols); this.madeAt = Date.now(); sockets.push(this); }
  }
  return { WebSocket: Recording, sockets };
}

/** Whether every thread of pid is stopped (Linux /proc); true where /proc cannot tell. */
function allStopped(pid) {
  let tasks;
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return true; }
  return tasks.every((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return /^[Tt]/.test(stat.slice(stat.lastIndexOf(')') + 2));
    } catch { return true; } // gone
  });
}

/** Mints a token with `weft token` (the dev secret is weft's default). */
export function mintToken(team, user, ttl = '1h') {
  return execFileSync(process.env.WEFT_BIN, ['token', '--team', team, '--user', user, '--ttl', ttl], { encoding: 'utf8' }).trim();
}

/**
 * Starts `weft dev --size tiny` on free loopback ports; args are added to its command line
 * (e.g. ['--heartbeat', '2s']). The result has the URLs it printed (page, ws, edge, ops,
 * control, origin), its tokens, the child process, and helpers for the origin's admin API, the
 * origin's faults, the edge's drain and the dev control endpoint.
 */
export async function startWeft({ args = [] } = {}) {
  const bin = process.env.WEFT_BIN;
  assert.ok(bin, 'set WEFT_BIN to the path of a weft binary (cd /work/main && go build -o /tmp/jsw/weft ./cmd/weft)');
  const proc = spawn(bin, ['dev', '--addr', '127.0.0.1:0', '--origin-addr', '127.0.0.1:0', '--nats-addr', '127.0.0.1:0',
    '--size', 'tiny', '--rate', '50', '--drain', '100ms', '--log-level', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  let exited = false;
  proc.on('exit', () => { exited = true; });
  await waitFor(() => {
    if (exited) throw new Error(`weft dev exited:\n${out}\n${err}`);
    return /\ntry:/.test(out);
  }, { timeoutMs: 30000, what: 'weft dev to print its URLs and tokens' });
  const page = out.match(/^weft dev: open (http:\/\/\S+?)\/? in a browser/m)?.[1];
  const ws = out.match(/WebSocket (ws:\/\/\S+?)\)/)?.[1];
  const edge = out.match(/^\s*edge\s+(http:\/\/\S+)/m)?.[1];
  const ops = out.match(/^\s*ops\s+(http:\/\/\S+)/m)?.[1];
  const controlURL = out.match(/^\s*control\s+(http:\/\/\S+)/m)?.[1];
  const origin = out.match(/^\s*origin\s+(http:\/\/\S+)/m)?.[1];
  const tokens = [...out.matchAll(/^\s+(T\w+)\s+(U\w+)\s+(\S+)\s+(eyJ[\w.-]+)\s*$/gm)].map((m) => ({ team: m[1], user: m[2], name: m[3], token: m[4] }));
  assert.ok(ws && edge && origin && tokens.length > 0, `could not parse weft dev's output:\n${out}`);
  let frozen = false;
  const stop = async () => {
    if (exited) return;
    if (frozen) thaw(); // a stopped process does not act on SIGTERM
    proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 5000);
    await new Promise((r) => (exited ? r() : proc.once('exit', r)));
    clearTimeout(t);
  };
  /**
   * Freezes the whole dev process (edge, origin, NATS): sockets stay open, nothing answers.
   * Resolves once every thread of it is stopped (a busy machine takes a moment to stop them).
   */
  const freeze = async () => {
    frozen = true;
    proc.kill('SIGSTOP');
    await waitFor(() => allStopped(proc.pid), { what: `weft dev (pid ${proc.pid}) to stop` });
  };
  /** Lets a frozen process run again. Safe to call when it is not frozen. */
  const thaw = () => { if (!exited) proc.kill('SIGCONT'); frozen = false; };
  /** JSON from a POST; {status, ...body}. */
  const post = async (url, body, headers = {}) => {
    const res = await fetch(url, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
    const text = await res.text();
    let j;
    try { j = JSON.parse(text); } catch { j = { text }; }
    return { status: res.status, ...j };
  };
  /** Posts changes through the reference origin's admin API: {status, ok, first_seq, last_seq}. */
  const postEvent = (team, body) => post(`${origin}/origin/admin/teams/${team}/events`, body);
  /** Sets the reference origin's faults ({latency, error_rate, down}); answers the faults now in force. */
  const setFaults = (faults) => post(`${origin}/origin/admin/faults`, faults);
  /** The dev control endpoint: verb kill | start | restart of a region's edges; {status, ...}. */
  const control = (verb, region = 'default') => {
    assert.ok(controlURL, `weft dev printed no control URL:\n${out}`);
    return post(`${controlURL}/regions/${region}/${verb}`);
  };
  /** Drains the edge through its operator listener, as a preStop hook would; {status, text}. */
  const drain = () => {
    assert.ok(ops, `weft dev printed no ops URL:\n${out}`);
    return post(`${ops}/drain`, undefined, { 'Weft-Drain': '1' });
  };
  return { proc, page, ws, edge, ops, controlURL, origin, tokens, stop, postEvent, setFaults, control, drain, freeze, thaw, output: () => out + err };
}
