// Compiled by `npm run typecheck` (tsc, tsconfig.json), never run: it uses every export, method
// and option of @weft/client as a TypeScript program would, against src/client.d.ts; the lines
// marked to expect an error prove that wrong uses are refused. Everything is inside a function
// that nothing calls, so a test runner that picks up .ts files finds nothing to do here.
import {
  PROTOCOL, Codes, WeftError, WeftClient, Store, connect, decodeEvent, normalURL, backoffWindow, backoffDelay,
} from '@weft/client';
import type {
  User, Channel, Team, Hello, Goodbye, Boot, Annotations, WeftEvent, ReconnectInfo, State, CallOptions,
  BackoffOptions, ClientOptions, ClientEvents, Stats, WebSocketLike, WebSocketConstructor,
} from '@weft/client';

/** Compiles only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function same<A, B>(_: Equal<A, B>): void {}

export async function usage(): Promise<void> {
  same<typeof PROTOCOL, 'weft.v1'>(true);
  same<typeof Codes.originUnavailable, 'origin_unavailable'>(true);
  same<typeof Codes.timeout, 'timeout'>(true);

  const backoff: BackoffOptions = { minMs: 500, maxMs: 30000, stableAfterMs: 10000 };
  const ac = new AbortController();
  const opts: ClientOptions = {
    url: 'wss://weft.example.com/ws',
    token: 'eyJ…',
    tokenSource: async () => 'eyJ…',
    WebSocket: globalThis.WebSocket,
    fetch: globalThis.fetch,
    skipBoot: false,
    diagnose: true,
    callTimeoutMs: 10000,
    dialTimeoutMs: 10000,
    connectTimeoutMs: 30000,
    signal: ac.signal,
    eventQueue: 10000,
    backoff,
    rand: Math.random,
    onState: (s: State) => { same<typeof s, 'connecting' | 'booting' | 'open' | 'reconnecting' | 'closed'>(true); },
    onEvent: (ev: WeftEvent) => { ev.seq.toFixed(); },
    onHello: (h: Hello) => { h.heartbeat_ms.toFixed(); },
    onBoot: (b: Boot) => { b.self.id.toUpperCase(); },
    onReconnect: (r: ReconnectInfo) => { r.waitMs.toFixed(); r.goodbye?.reconnect_after_ms.toFixed(); },
  };
  // A tokenSource may answer at once too; only one of token and tokenSource is needed.
  const sync: ClientOptions = { url: 'http://127.0.0.1:8080', tokenSource: () => 'eyJ…' };

  // A socket class with only what the client uses (the `ws` package's is one of those).
  class MinimalSocket implements WebSocketLike {
    readyState = 0;
    protocol = '';
    onopen: ((ev: any) => any) | null = null;
    onmessage: ((ev: any) => any) | null = null;
    onerror: ((ev: any) => any) | null = null;
    onclose: ((ev: any) => any) | null = null;
    constructor(readonly url: string, readonly protocols?: string | string[]) {}
    send(_data: string): void {}
    close(_code?: number, _reason?: string): void {}
  }
  const ctor: WebSocketConstructor = MinimalSocket;

  const c: WeftClient = await connect(opts);
  const c2 = new WeftClient({ ...sync, WebSocket: ctor });
  const started: Promise<void> = c2.start();
  await started;

  // State.
  const st: State = c.state;
  const store: Store = c.store;
  const hello: Hello | null = c.hello;
  const lastBoot: Boot | null = c.lastBoot;
  const seq: number = c.seq;
  const stats: Stats = c.stats;
  stats.connects + stats.resumes + stats.boots + stats.events + stats.duplicates + stats.requests;
  const err: unknown = c.err;
  const done: Promise<void> = c.done;
  void [st, store, hello, lastBoot, seq, err, done];

  // Listeners get the payload of their name; on and off chain.
  c.on('event', (ev) => { same<typeof ev, WeftEvent>(true); })
    .on('hello', (h) => { same<typeof h, Hello>(true); })
    .on('boot', (b) => { same<typeof b, Boot>(true); })
    .on('state', (s) => { same<typeof s, State>(true); })
    .on('reconnect', (r) => { same<typeof r, ReconnectInfo>(true); })
    .on('error', (e) => { same<typeof e, unknown>(true); })
    .on('close', (why) => { same<typeof why, unknown>(true); });
  const onEvent = (ev: ClientEvents['event']): void => { void ev; };
  c.on('event', onEvent).off('event', onEvent);
  for await (const ev of c.events()) {
    same<typeof ev, WeftEvent>(true);
    const sender: User | undefined = c.store.user(ev.userId);
    const channel: Channel | undefined = c.channel(ev.channelId);
    const attached: Annotations = ev.annotations;
    const raw: unknown = ev.raw;
    void [sender, channel, attached, raw, ev.cut, ev.ts, ev.text, ev.clientMsgId, ev.mentions, ev.updated, ev.user, ev.team];
    if (!c.store.renderable(ev)) await c.usersInfo(c.store.missing(ev).users);
    break;
  }

  // Methods (docs/protocol.md section 4), each with CallOptions.
  const o: CallOptions = { timeoutMs: 5000, signal: AbortSignal.timeout(5000) };
  const b: Boot = await c.boot(o);
  const team: Team = b.team;
  const ui = await c.usersInfo(['U00000001'], o);
  same<typeof ui, { users: User[]; missing: string[] }>(true);
  const ul = await c.usersList({ cursor: '', limit: 100 }, o);
  same<typeof ul.next_cursor, string>(true);
  await c.usersList();
  const ci = await c.channelsInfo(['C00000000'], o);
  same<typeof ci.channels, Channel[]>(true);
  const cm = await c.channelsMembers({ channel: 'C00000000', limit: 3 }, o);
  same<typeof cm.members, string[]>(true);
  const uc = await c.usersChannels({ user: 'U00000001' }, o);
  same<typeof uc.channels, string[]>(true);
  await c.usersChannels();
  const found = await c.autocomplete({ query: 'sak', types: ['users', 'channels'], limit: 5, include_inactive: false }, o);
  for (const r of found.results) same<typeof r.type, 'user' | 'channel'>(true);
  const pong: {} = await c.ping(o);
  const anything: unknown = await c.call('users.info', { users: ['U1'] }, o);
  void [team, pong, anything];

  // Errors.
  try {
    await c.ping();
  } catch (e) {
    if (e instanceof WeftError) {
      const code: string = e.code;
      const retryAfterMs: number = e.retryAfterMs;
      const status: number = e.status;
      const cause: unknown = e.cause;
      if (e.code === Codes.timeout || e.code === Codes.disconnected) void [code, retryAfterMs, status, cause];
    }
  }
  const we = new WeftError(Codes.invalidRequest, 'bad', { retryAfterMs: 10, status: 400, cause: new Error('x') });
  const asError: Error = we;
  void asError;

  // The store and helpers.
  const s = new Store();
  s.putUsers(b.self);
  s.putChannels(...b.channels);
  s.putTeam(b.team);
  const names = Store.names(decodeEvent({ type: 'event', seq: 1, event: {} }));
  same<typeof names, { users: string[]; channel: string }>(true);
  const u: URL = normalURL('https://weft.example.com');
  const w: number = backoffWindow({ minMs: 500, maxMs: 30000, stableAfterMs: 10000 }, 3);
  const d: number = backoffDelay({ minMs: 500, maxMs: 30000, stableAfterMs: 10000 }, 0, { afterMs: 1000, goodbye: false }, () => 0.5);
  const bye: Goodbye = { type: 'goodbye', reason: 'draining', reconnect_after_ms: 2500 };
  void [u, w, d, bye];

  await c.close();
  await c2.close();

  // Wrong uses are refused.
  // @ts-expect-error url is required
  await connect({ token: 'eyJ…' });
  // @ts-expect-error usersInfo takes a list of IDs
  await c.usersInfo('U00000001');
  // @ts-expect-error channelsMembers needs a channel
  await c.channelsMembers({ limit: 3 });
  // @ts-expect-error autocomplete types are users and channels
  await c.autocomplete({ query: 'x', types: ['people'] });
  // @ts-expect-error no such listener
  c.on('message', () => {});
  // @ts-expect-error an event listener gets a WeftEvent, not a Hello
  c.on('event', (h: Hello) => { void h; });
  // @ts-expect-error the state is the client's to change
  c.state = 'open';
  // @ts-expect-error a timeout is a number of milliseconds
  await c.ping({ timeoutMs: '5s' });
  // @ts-expect-error the server says goodbye, the client does not
  const notFromClient: Goodbye = { type: 'hello', reason: 'x', reconnect_after_ms: 0 };
  void notFromClient;
  // @ts-expect-error a socket without send is no socket
  new WeftClient({ url: 'ws://x', token: 't', WebSocket: class { constructor(_u: string) {} } });
}
