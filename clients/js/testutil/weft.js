// Test harness: starts a real `weft dev` (path from env WEFT_BIN), parses what it prints, and
// stops it (SIGTERM, then SIGKILL). Loopback only.
import { spawn } from 'node:child_process';
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

/** Wraps a WebSocket constructor and records every socket made, so a test can drop one. */
export function recordingWebSocket(Base = NodeWebSocket) {
  const sockets = [];
  class Recording extends Base {
    constructor(url, protocols) { super(url, protocols); sockets.push(this); }
  }
  return { WebSocket: Recording, sockets };
}

export async function startWeft() {
  const bin = process.env.WEFT_BIN;
  assert.ok(bin, 'set WEFT_BIN to the path of a weft binary (cd /work/main && go build -o /tmp/jsw/weft ./cmd/weft)');
  const proc = spawn(bin, ['dev', '--addr', '127.0.0.1:0', '--origin-addr', '127.0.0.1:0', '--nats-addr', '127.0.0.1:0',
    '--size', 'tiny', '--rate', '50', '--drain', '100ms', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const ws = out.match(/WebSocket (ws:\/\/\S+?)\)/)?.[1];
  const edge = out.match(/^\s*edge\s+(http:\/\/\S+)/m)?.[1];
  const origin = out.match(/^\s*origin\s+(http:\/\/\S+)/m)?.[1];
  const tokens = [...out.matchAll(/^\s+(T\w+)\s+(U\w+)\s+(\S+)\s+(eyJ[\w.-]+)\s*$/gm)].map((m) => ({ team: m[1], user: m[2], name: m[3], token: m[4] }));
  assert.ok(ws && edge && origin && tokens.length > 0, `could not parse weft dev's output:\n${out}`);
  const stop = async () => {
    if (exited) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 5000);
    await new Promise((r) => (exited ? r() : proc.once('exit', r)));
    clearTimeout(t);
  };
  /** Posts changes through the reference origin's admin API. */
  const postEvent = async (team, body) => {
    const res = await fetch(`${origin}/origin/admin/teams/${team}/events`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const j = await res.json();
    return { status: res.status, ...j };
  };
  return { proc, ws, edge, origin, tokens, stop, postEvent, output: () => out + err };
}
