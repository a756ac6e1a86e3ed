// The store of users and channels and the decoding of event frames (see client.js).

/**
 * @typedef {import('./client.js').User} User
 * @typedef {import('./client.js').Channel} Channel
 * @typedef {import('./client.js').Team} Team
 * @typedef {import('./client.js').Annotations} Annotations
 * @typedef {import('./client.js').WeftEvent} WeftEvent
 */

/** The client's memory of the team's objects, at the newest version seen (higher `updated` wins; equal replaces, as in the Go client). */
export class Store {
  constructor() {
    /** @type {Map<string, User>} */ this.users = new Map();
    /** @type {Map<string, Channel>} */ this.channels = new Map();
    /** @type {Team | null} */ this.team = null;
  }
  /** @param {string} id @returns {User | undefined} */
  user(id) { return this.users.get(id); }
  /** @param {string} id @returns {Channel | undefined} */
  channel(id) { return this.channels.get(id); }
  /** @param {User[]} us */
  putUsers(...us) {
    for (const u of us) {
      if (!u || typeof u.id !== 'string' || u.id === '') continue;
      const old = this.users.get(u.id);
      if (!old || (u.updated ?? 0) >= (old.updated ?? 0)) this.users.set(u.id, u);
    }
  }
  /** @param {Channel[]} cs */
  putChannels(...cs) {
    for (const c of cs) {
      if (!c || typeof c.id !== 'string' || c.id === '') continue;
      const old = this.channels.get(c.id);
      if (!old || (c.updated ?? 0) >= (old.updated ?? 0)) this.channels.set(c.id, c);
    }
  }
  /** @param {Team} t */
  putTeam(t) {
    if (t && (!this.team || (t.updated ?? 0) >= (this.team.updated ?? 0))) this.team = t;
  }
  /** What an event names: its sender or subject, mentioned users, its channel. @param {WeftEvent} ev */
  static names(ev) {
    /** @type {string[]} */ let users = [];
    let channel = '';
    if (ev.type === 'message') users = [ev.userId, ...(ev.mentions || [])];
    else if (ev.type === 'member_joined' || ev.type === 'member_left') users = [ev.userId];
    if (['message', 'member_joined', 'member_left', 'channel_created', 'channel_change'].includes(ev.type)) channel = ev.channelId;
    return { users, channel };
  }
  /** Whether every object ev names is in the store. @param {WeftEvent} ev */
  renderable(ev) {
    const m = this.missing(ev);
    return m.users.length === 0 && m.channel === '';
  }
  /** The IDs ev names that the store lacks. @param {WeftEvent} ev */
  missing(ev) {
    const { users, channel } = Store.names(ev);
    const out = { users: /** @type {string[]} */ ([]), channel: '' };
    if (channel && !this.channels.has(channel)) out.channel = channel;
    for (const id of users) if (id && !this.users.has(id) && !out.users.includes(id)) out.users.push(id);
    return out;
  }
  /** Merges what ev carries and what was attached to it (Go: Store.apply). @param {WeftEvent} ev */
  apply(ev) {
    this.putUsers(...Object.values(ev.annotations.users));
    this.putChannels(...Object.values(ev.annotations.channels));
    if (ev.user) this.putUsers(ev.user);
    else if (ev.team) this.putTeam(ev.team);
    else if (ev.channel) this.putChannels(ev.channel);
    else if (ev.type === 'channel_deleted') this.channels.delete(ev.channelId);
    else if (ev.cut && ev.type === 'user_change') this.users.delete(ev.userId); // stale: ask again
    else if (ev.cut && (ev.type === 'channel_created' || ev.type === 'channel_change')) this.channels.delete(ev.channelId);
  }
}

const isObj = (/** @type {any} */ v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Reads an annotations object entry by entry, keeping those that are the object their key names. */
function decodeAnnotations(/** @type {any} */ raw) {
  /** @type {Annotations} */
  const a = { users: {}, channels: {} };
  if (!isObj(raw)) return a;
  for (const [k, key] of /** @type {const} */ ([['users', 'users'], ['channels', 'channels']])) {
    if (!isObj(raw[k])) continue;
    for (const [id, o] of Object.entries(raw[k])) if (id && isObj(o) && o.id === id) a[key][id] = o;
  }
  return a;
}

/** @returns {WeftEvent} */
export function decodeEvent(/** @type {any} */ f) {
  const e = isObj(f.event) ? f.event : {};
  /** @type {WeftEvent} */
  const ev = { seq: f.seq, type: typeof e.type === 'string' ? e.type : '', userId: '', channelId: '', ts: e.ts ?? '',
    text: e.text ?? '', clientMsgId: e.client_msg_id ?? '', mentions: Array.isArray(e.mentions) ? e.mentions : [],
    annotations: decodeAnnotations(f.annotations), raw: f.event, cut: typeof f.cut === 'string' ? f.cut : '' };
  if (typeof e.updated === 'number') ev.updated = e.updated;
  if (isObj(e.user)) { ev.user = e.user; ev.userId = e.user.id ?? ''; } else if (typeof e.user === 'string') ev.userId = e.user;
  if (isObj(e.channel)) { ev.channel = e.channel; ev.channelId = e.channel.id ?? ''; } else if (typeof e.channel === 'string') ev.channelId = e.channel;
  if (isObj(e.team)) ev.team = e.team;
  return ev;
}

