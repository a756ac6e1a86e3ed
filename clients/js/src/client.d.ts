// Type declarations for @weft/client (hand-written; keep in step with client.js).

export declare const PROTOCOL: 'weft.v1';

/** docs/protocol.md section 4, Objects. `updated` is the version: higher wins. */
export interface User {
  id: string; team: string; name: string; real_name: string; display_name: string; title: string;
  avatar_url: string; tz: string; is_bot: boolean; deleted: boolean; updated: number;
}
export interface Channel {
  id: string; team: string; name: string; topic: string; purpose: string; is_private: boolean;
  is_archived: boolean; created: string; creator: string; member_count: number; updated: number;
}
export interface Team {
  id: string; name: string; domain: string; user_count: number; channel_count: number; updated: number;
}

export interface Hello {
  type: 'hello'; protocol: string; session: string; team: string; user: string; node: string;
  region: string; seq: number; resumed: boolean; heartbeat_ms: number;
}
export interface Goodbye {
  type: 'goodbye';
  /** draining | moved | slow_consumer | policy | token_expired | account_inactive | overloaded | … */
  reason: string;
  reconnect_after_ms: number;
}
export interface Boot { self: User; team: Team; channels: Channel[]; seq: number }

export interface Annotations { users: Record<string, User>; channels: Record<string, Channel> }

/** One event of the team's stream, as handed to listeners: by then its objects are in the store. */
export interface WeftEvent {
  seq: number;
  /** message | user_change | team_change | channel_created | channel_change | channel_deleted | member_joined | member_left | … ('' when unreadable) */
  type: string;
  /** The User a user_change carries. */
  user?: User;
  /** The Team a team_change carries. */
  team?: Team;
  /** The Channel a channel_created / channel_change carries. */
  channel?: Channel;
  /** The user of message (sender), member_joined, member_left; the user's ID for user_change. */
  userId: string;
  /** The channel the event is about ('' for user_change, team_change). */
  channelId: string;
  ts: string;
  text: string;
  clientMsgId: string;
  mentions: string[];
  /** The version of a change that carries no object (channel_deleted, member_*), when the origin sent one. */
  updated?: number;
  /** Objects the edge attached (already merged into the store); empty maps when none. */
  annotations: Annotations;
  /** The event object exactly as the server sent it. */
  raw: unknown;
  /** 'too_large' when the server sent the event cut, '' when whole. */
  cut: string;
}

export interface ReconnectInfo {
  /** Attempts since the last stable connection (1: the first retry). */
  attempt: number;
  /** How long the client waits before dialing. */
  waitMs: number;
  /** Why the previous connection or attempt ended. */
  error?: unknown;
  /** What the server said before closing, if it did. */
  goodbye?: Goodbye;
}

export type State = 'connecting' | 'booting' | 'open' | 'reconnecting' | 'closed';

export interface CallOptions {
  /** Bounds the wait for a connection and the reply; default ClientOptions.callTimeoutMs (10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface BackoffOptions {
  /** Window of the first retry; default 500. */
  minMs?: number;
  /** Cap of the window; default 30000. */
  maxMs?: number;
  /** A connection up (booted, serving) this long resets the schedule; default 10000. */
  stableAfterMs?: number;
}

/**
 * What the client uses of a socket: the WHATWG WebSocket's handlers, send, close, readyState and
 * protocol. Browsers' and Node's (22+, or 20 with --experimental-websocket) WebSocket are one;
 * so is the `ws` package's, whose types are not the DOM's.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((ev: any) => any) | null;
  /** Reads ev.data (text frames). */
  onmessage: ((ev: any) => any) | null;
  onerror: ((ev: any) => any) | null;
  /** Reads ev.code and ev.reason. */
  onclose: ((ev: any) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Anything constructible like the WHATWG WebSocket: new (url, protocols). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ClientOptions {
  /** ws(s):// or http(s):// URL of an edge or proxy; no path means /ws. */
  url: string;
  /** Bearer token, sent as the `token` query parameter of /ws. */
  token?: string;
  /** Asked before every dial instead of `token` (renew expiring tokens). Errors are retried with backoff. */
  tokenSource?: () => string | Promise<string>;
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Default globalThis.fetch; used only by `diagnose`. */
  fetch?: typeof globalThis.fetch;
  /** Do not boot after a connection that did not resume. */
  skipBoot?: boolean;
  /** After a refused handshake, POST /api/ping with the token in a header to learn why (401/403 stop the client; 429/503 give Retry-After). Default true when fetch exists. */
  diagnose?: boolean;
  /** Default per-call timeout; default 10000. */
  callTimeoutMs?: number;
  /** Bounds a handshake plus its hello, and the boot; default 10000. */
  dialTimeoutMs?: number;
  /** Bounds connect()/start(): the first connection; default none (retry until close()). */
  connectTimeoutMs?: number;
  /** Aborts connect()/start(). */
  signal?: AbortSignal;
  /** Events kept while nobody listens to 'event'; past it the connection is dropped and resumed once a listener is added. Default 10000. */
  eventQueue?: number;
  backoff?: BackoffOptions;
  /** Source of jitter in [0, 1); default Math.random. */
  rand?: () => number;
  onState?: (state: State) => void;
  onEvent?: (ev: WeftEvent) => void;
  onHello?: (h: Hello) => void;
  onBoot?: (b: Boot) => void;
  onReconnect?: (r: ReconnectInfo) => void;
}

export declare const Codes: Readonly<{
  invalidRequest: 'invalid_request'; unknownMethod: 'unknown_method'; notFound: 'not_found';
  invalidAuth: 'invalid_auth'; accountInactive: 'account_inactive'; rateLimited: 'rate_limited';
  overloaded: 'overloaded'; originUnavailable: 'origin_unavailable'; tooLarge: 'too_large';
  internal: 'internal';
  disconnected: 'disconnected'; closed: 'closed'; timeout: 'timeout'; aborted: 'aborted';
}>;

export declare class WeftError extends Error {
  constructor(code: string, message: string, extra?: { retryAfterMs?: number; status?: number; cause?: unknown });
  /** A protocol error code (section 8) or one of the client's: disconnected, closed, timeout, aborted. */
  code: string;
  /** When waiting helps: the server's retry_after_ms (or Retry-After), else 0. */
  retryAfterMs: number;
  /** HTTP status of a refused handshake (seen through diagnose), else 0. */
  status: number;
}

export declare class Store {
  users: Map<string, User>;
  channels: Map<string, Channel>;
  team: Team | null;
  user(id: string): User | undefined;
  channel(id: string): Channel | undefined;
  putUsers(...us: User[]): void;
  putChannels(...cs: Channel[]): void;
  putTeam(t: Team): void;
  static names(ev: WeftEvent): { users: string[]; channel: string };
  renderable(ev: WeftEvent): boolean;
  missing(ev: WeftEvent): { users: string[]; channel: string };
  apply(ev: WeftEvent): void;
}

export interface ClientEvents {
  event: WeftEvent;
  hello: Hello;
  boot: Boot;
  state: State;
  reconnect: ReconnectInfo;
  /** An exception thrown by a listener, or a warning (a reply without id). */
  error: unknown;
  /** Why the client stopped: null after close(), else the error (invalid_auth, account_inactive, …). */
  close: unknown;
}

export interface Stats {
  connects: number; resumes: number; boots: number; events: number; duplicates: number; requests: number;
}

export declare class WeftClient {
  constructor(opts: ClientOptions);
  readonly store: Store;
  readonly state: State;
  /** The current (or last) connection's hello. */
  readonly hello: Hello | null;
  /** The latest boot payload (null with skipBoot until boot() is called). */
  readonly lastBoot: Boot | null;
  /** Stream position: seq of the last event received, or of the hello. A reconnect resumes after it. */
  readonly seq: number;
  readonly stats: Stats;
  /** Why the client stopped on its own, or null. */
  readonly err: unknown;
  /** Resolves when the client has stopped. */
  readonly done: Promise<void>;

  on<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => void): this;
  off<K extends keyof ClientEvents>(name: K, fn: (v: ClientEvents[K]) => void): this;
  /** Events as an async iterator (ends at close). */
  events(): AsyncIterableIterator<WeftEvent>;

  /** Starts the client; resolves when the first connection is up (hello and, unless skipBoot, boot). */
  start(): Promise<void>;
  /** Normal closure; pending and later calls fail with code 'closed'. */
  close(): Promise<void>;

  call(method: string, params?: unknown, o?: CallOptions): Promise<any>;
  boot(o?: CallOptions): Promise<Boot>;
  usersInfo(ids: string[], o?: CallOptions): Promise<{ users: User[]; missing: string[] }>;
  usersList(p?: { cursor?: string; limit?: number }, o?: CallOptions): Promise<{ users: User[]; next_cursor: string }>;
  channelsInfo(ids: string[], o?: CallOptions): Promise<{ channels: Channel[]; missing: string[] }>;
  channelsMembers(p: { channel: string; cursor?: string; limit?: number }, o?: CallOptions): Promise<{ members: string[]; next_cursor: string }>;
  usersChannels(p?: { user?: string; cursor?: string; limit?: number }, o?: CallOptions): Promise<{ channels: string[]; next_cursor: string }>;
  autocomplete(
    p: { query: string; types?: ('users' | 'channels')[]; limit?: number; include_inactive?: boolean },
    o?: CallOptions,
  ): Promise<{ results: { type: 'user' | 'channel'; id: string; name: string; label: string; score: number }[] }>;
  ping(o?: CallOptions): Promise<{}>;

  user(id: string): User | undefined;
  channel(id: string): Channel | undefined;
}

/** new WeftClient(opts) + start(). */
export declare function connect(opts: ClientOptions): Promise<WeftClient>;

export declare function decodeEvent(frame: unknown): WeftEvent;
export declare function normalURL(raw: string): URL;
export declare function backoffWindow(b: Required<BackoffOptions>, n: number): number;
export declare function backoffDelay(b: Required<BackoffOptions>, n: number, hint: { afterMs: number; goodbye: boolean }, rand?: () => number): number;
