// The main view: a channel's messages as they arrive, or a person's card. weft stores no
// messages (it is a cache of users and channels, with a live stream), so the page is the only
// history there is: every event of a channel is kept here, for as long as the page lives, so
// that switching away and back shows what came meanwhile.

import { el, userAvatar, displayName, timeEl, localTime } from './render.js';

/** Event types drawn as a system line in their channel. */
const SYSTEM = new Set(['member_joined', 'member_left', 'channel_change']);

/** Each channel's events, in seq order, each seq once. */
export class History {
  constructor() {
    /** @type {Map<string, {seqs: Set<number>, events: any[]}>} */ this.channels = new Map();
  }

  /** Whether an event belongs in a channel's history. @param {any} ev */
  static keeps(ev) {
    return !!ev.channelId && (ev.type === 'message' || SYSTEM.has(ev.type));
  }

  /**
   * Adds ev to its channel; returns its index there, or -1 for a seq already held. The client
   * already drops a seq it has handed over; this guards the page's own invariant anyway.
   * @param {any} ev
   */
  add(ev) {
    let h = this.channels.get(ev.channelId);
    if (!h) this.channels.set(ev.channelId, (h = { seqs: new Set(), events: [] }));
    if (h.seqs.has(ev.seq)) return -1;
    h.seqs.add(ev.seq);
    let i = h.events.length;
    while (i > 0 && h.events[i - 1].seq > ev.seq) i--; // almost always in order: no move at all
    h.events.splice(i, 0, ev);
    return i;
  }

  /** @param {string} channel */
  events(channel) {
    return this.channels.get(channel)?.events ?? [];
  }
}

export class View {
  /** @param {any} client @param {History} history */
  constructor(client, history) {
    this.client = client;
    this.history = history;
    this.main = /** @type {HTMLElement} */ (document.getElementById('view'));
    this.title = /** @type {HTMLElement} */ (document.getElementById('view-title'));
    this.topic = /** @type {HTMLElement} */ (document.getElementById('view-topic'));
    this.note = /** @type {HTMLElement} */ (document.getElementById('view-note'));
    this.list = /** @type {HTMLOListElement} */ (document.getElementById('messages'));
    this.empty = /** @type {HTMLElement} */ (document.getElementById('view-empty'));
    this.card = /** @type {HTMLElement} */ (document.getElementById('dm-card'));
    this.kind = '';
    this.id = '';
  }

  /**
   * Shows a channel: heading, topic, and every event kept for it.
   * @param {string} id @param {any} ch the store's Channel (or a stand-in) @param {boolean} member
   */
  showChannel(id, ch, member) {
    this.kind = 'channel';
    this.id = id;
    this.main.dataset.kind = 'channel';
    this.main.dataset.id = id;
    this.main.setAttribute('aria-label', `Channel #${ch.name}`);
    this.header(ch);
    this.card.hidden = true;
    this.card.replaceChildren();
    this.list.hidden = false;
    // Only the events of the caller's channels are sent (docs/protocol.md section 5).
    this.note.hidden = member;
    this.note.textContent = member ? '' : 'You are not a member of this channel: weft sends you the events of your own channels only, so nothing will appear here.';
    this.list.replaceChildren(...this.history.events(id).map((ev) => this.item(ev)));
    this.empty.hidden = !member || this.list.children.length > 0;
    this.scrollToEnd();
  }

  /** Sets the heading and topic from a channel object (again after a channel_change). @param {any} ch */
  header(ch) {
    this.title.textContent = `#${ch.name}`;
    this.topic.textContent = ch.topic || ch.purpose || '';
    this.topic.hidden = !this.topic.textContent;
    document.title = `#${ch.name} · weft dev`;
  }

  /**
   * Shows a person: the demo world has channels only, so a direct conversation is their card.
   * @param {string} id @param {any} u the store's User, or undefined when not known
   */
  showDM(id, u) {
    this.kind = 'dm';
    this.id = id;
    const name = u ? displayName(u) : id;
    this.main.dataset.kind = 'dm';
    this.main.dataset.id = id;
    this.main.setAttribute('aria-label', `Direct conversation with ${name}`);
    this.title.textContent = name;
    this.topic.textContent = u?.title ?? '';
    this.topic.hidden = !this.topic.textContent;
    document.title = `${name} · weft dev`;
    this.list.replaceChildren();
    this.list.hidden = true;
    this.empty.hidden = true;
    this.note.hidden = true;
    const rows = [];
    if (u) {
      if (u.real_name && u.real_name !== name) rows.push(['Name', u.real_name]);
      rows.push(['Handle', `@${u.name}`]);
      if (u.title) rows.push(['Title', u.title]);
      if (u.tz) rows.push(['Local time', `${localTime(u.tz)} (${u.tz.replaceAll('_', ' ')})`]);
      if (u.deleted) rows.push(['Status', 'Deactivated']);
    }
    this.card.replaceChildren(
      el('div', { class: 'dm-who' },
        u ? userAvatar(u, 'lg') : el('span', { class: 'avatar avatar-lg', 'aria-hidden': 'true' }, '?'),
        el('div', {},
          el('p', { class: 'dm-name' }, name),
          u?.title ? el('p', { class: 'dm-title' }, u.title) : null)),
      el('dl', { class: 'dm-facts' }, ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
      el('p', { class: 'dm-note' },
        'Direct messages are not part of the demo world: it has channels only. This card is drawn from the user object weft keeps for ',
        el('code', {}, id), '.'));
    this.card.hidden = false;
  }

  /**
   * Draws a newly kept event if its channel is open.
   * @param {any} ev @param {number} index its place in the channel's history
   */
  added(ev, index) {
    if (this.kind !== 'channel' || ev.channelId !== this.id) return;
    const stick = this.nearEnd();
    const li = this.item(ev);
    const before = this.list.children[index] ?? null;
    this.list.insertBefore(li, before);
    this.empty.hidden = true;
    // Follow the conversation only when the reader is already at its end: someone scrolled up
    // to read is not pulled down by every new message.
    if (stick) this.scrollToEnd();
  }

  /** Redraws the items that show a user (as sender, subject or mention) after their user_change. @param {string} userId */
  userChanged(userId) {
    if (this.kind === 'dm' && this.id === userId) return this.showDM(userId, this.client.store.user(userId));
    const id = CSS.escape(userId);
    for (const li of this.list.querySelectorAll(`li[data-user="${id}"], li[data-subject="${id}"], li:has(.mention[data-mention="${id}"])`)) {
      const seq = Number(/** @type {HTMLElement} */ (li).dataset.seq);
      const ev = this.history.events(this.id).find((e) => e.seq === seq);
      if (ev) li.replaceWith(this.item(ev));
    }
    return undefined;
  }

  /** One event as a list item. @param {any} ev */
  item(ev) {
    return ev.type === 'message' ? this.message(ev) : this.system(ev);
  }

  /**
   * A message. The sender comes from the store, never from a users.info: the edge attaches
   * every object an event names that this connection lacks, and the client merges them before
   * handing the event over (docs/protocol.md section 6). A sender missing here is a bug worth
   * seeing, so it is drawn as its ID with class unknown-sender.
   * @param {any} ev
   */
  message(ev) {
    const u = this.client.store.user(ev.userId);
    const me = this.client.hello?.user;
    const li = el('li', { class: 'msg', 'data-seq': ev.seq, 'data-user': ev.userId, 'data-ts': ev.ts });
    if (!u) li.classList.add('unknown-sender');
    if (me && ev.mentions?.includes(me)) li.classList.add('mentions-me');
    if (ev.cut) li.classList.add('cut');
    li.append(
      u ? userAvatar(u) : el('span', { class: 'avatar', 'aria-hidden': 'true', 'data-avatar-url': '' }, '?'),
      el('div', { class: 'msg-body' },
        el('div', { class: 'msg-head' },
          el('span', { class: 'msg-sender' }, u ? displayName(u) : ev.userId),
          timeEl(ev.ts)),
        this.text(ev)));
    return li;
  }

  /** Message text with <@U…> mentions drawn as names from the store. @param {any} ev */
  text(ev) {
    const span = el('span', { class: 'msg-text' });
    const re = /<@([A-Za-z0-9_-]+)>/g;
    let at = 0;
    for (const m of ev.text.matchAll(re)) {
      span.append(ev.text.slice(at, m.index));
      const u = this.client.store.user(m[1]);
      span.append(el('span', { class: 'mention', 'data-mention': m[1] }, `@${u ? displayName(u) : m[1]}`));
      at = /** @type {number} */ (m.index) + m[0].length;
    }
    span.append(ev.text.slice(at));
    if (ev.cut) span.append(el('span', { class: 'cut-note' }, ' (cut: too long to send whole)'));
    return span;
  }

  /** A member joining or leaving, a channel changing: one quiet line. @param {any} ev */
  system(ev) {
    const store = this.client.store;
    const who = store.user(ev.userId);
    const name = who ? displayName(who) : ev.userId;
    let text = '';
    if (ev.type === 'member_joined') text = `${name} joined the channel`;
    else if (ev.type === 'member_left') text = `${name} left the channel`;
    else if (ev.type === 'channel_change') {
      const ch = ev.channel ?? store.channel(ev.channelId);
      text = ch ? `Channel updated: #${ch.name}${ch.topic ? `, topic “${ch.topic}”` : ''}` : 'Channel updated';
    }
    // data-subject, not data-user: data-user marks messages, which tests and styles count.
    return el('li', { class: 'sys', 'data-seq': ev.seq, 'data-subject': ev.userId || null, 'data-type': ev.type }, text);
  }

  nearEnd() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  /**
   * Jumps to the newest message. Never smooth: while a smooth scroll runs the list is not at its
   * end, and a burst of messages (a resume's replay) would then stop following.
   */
  scrollToEnd() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
