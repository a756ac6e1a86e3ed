// The page `weft dev` serves at /: pick a person, connect as them with the JavaScript client,
// and show what weft gives a chat client: boot, channels, live messages whose senders are
// already known, the Quick Switcher, lazily paged members, and the connection's ups and downs.
// All protocol handling is the client's (/weft/client.js); this file wires it to the page.

import { WeftClient } from '/weft/client.js';
import { showPicker } from './picker.js';
import { ConnStatus } from './status.js';
import { ChannelList } from './channels.js';
import { History, View } from './view.js';
import { Members } from './members.js';
import { Switcher } from './switcher.js';
import { el, userAvatar, displayName, colourFor, initials } from './render.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * What the page is showing; exposed with the client on window.weftPage for tests and for a
 * curious console.
 */
const state = {
  /** @type {any} the picked person (from /dev/users), null before the pick */ me: null,
  /** connection state as shown: connecting, open, reconnecting, resumed, closed */ conn: 'connecting',
  resumes: 0,
  /** @type {{kind: 'channel' | 'dm', id: string} | null} */ view: null,
  history: new History(),
};

/** @type {{client: any, switcherLatencies: {query: string, ms: number}[], open: typeof open, state: typeof state}} */
const page = { client: null, switcherLatencies: [], open, state };
/** @type {any} */ (window).weftPage = page;

/** @type {{client: any, channels: ChannelList, view: View, members: Members, switcher: Switcher, status: ConnStatus} | null} */
let ui = null;
/** Raised by every open(): a lookup that finishes after a later open() is dropped. */
let opening = 0;

/**
 * Opens a channel or a person. Channels and people the store lacks (one found in the switcher,
 * or named in the address) are fetched first: the one other place the page asks for objects.
 * @param {'channel' | 'dm'} kind @param {string} id
 * @param {{fromHash?: boolean, replace?: boolean}} [o] replace: the first view, which adds no history entry
 */
async function open(kind, id, o = {}) {
  if (!ui || !id) return;
  const { client, view, channels, members } = ui;
  const n = ++opening;
  if (kind === 'channel') {
    if (!client.store.channel(id)) {
      try { await client.channelsInfo([id]); } catch { /* shown as its ID below */ }
      if (n !== opening) return;
    }
    const ch = client.store.channel(id) ?? { id, name: id, topic: '' };
    view.showChannel(id, ch, channels.mine.has(id));
    channels.select(id);
    members.setChannel(id);
  } else {
    if (!client.store.user(id)) {
      try { await client.usersInfo([id]); } catch { /* shown as its ID below */ }
      if (n !== opening) return;
    }
    view.showDM(id, client.store.user(id));
    channels.select('');
    members.setChannel('');
  }
  state.view = { kind, id };
  // The fragment names what is open, so a reload or the back button comes back to it. A
  // fragment set here fires no hashchange; one set by a link does, and is already in place.
  if (!o.fromHash && location.hash !== `#${id}`) history[o.replace ? 'replaceState' : 'pushState'](null, '', `#${id}`);
}

/** Opens what the fragment names, when it names something known. */
function openFromHash() {
  if (!ui) return false;
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id || (state.view && state.view.id === id)) return !!id;
  const { client, channels } = ui;
  if (channels.mine.has(id) || client.store.channel(id)) open('channel', id, { fromHash: true });
  else if (client.store.user(id)) open('dm', id, { fromHash: true });
  else return false;
  return true;
}

/**
 * The first view: what the fragment names (a reload), else the default channel. A person named
 * there is not in the store yet (boot sends the caller alone), so it is asked for.
 */
async function openFirst() {
  if (!ui || openFromHash()) return;
  const id = decodeURIComponent(location.hash.slice(1));
  if (id) {
    const n = opening;
    const r = await ui.client.usersInfo([id]).catch(() => null);
    if (n !== opening || state.view) return; // something was opened meanwhile
    if (r?.users?.length) return open('dm', id, { fromHash: true });
  }
  return open('channel', ui.channels.first(), { replace: true });
}

/** Connects as the picked person and builds the page around the client. @param {any} me */
function start(me) {
  state.me = me;
  const client = new WeftClient({ url: location.origin, token: me.token });
  page.client = client;
  const status = new ConnStatus($('conn-state'), $('hello-info'));
  status.onChange = () => {
    state.conn = status.state;
    state.resumes = status.resumes;
  };
  const channels = new ChannelList(client, $('channels'));
  const view = new View(client, state.history);
  const members = new Members(client);
  const switcher = new Switcher({
    client,
    latencies: page.switcherLatencies,
    onChoose: (kind, id) => { open(kind, id).then(() => $('view-title').focus()); },
    fallbackFocus: () => $('view-title'),
  });
  ui = { client, channels, view, members, switcher, status };

  // Every listener is in place before start(), so that no state, hello, boot or event of the
  // first connection goes by unseen.
  status.attach(client);
  client.on('boot', (/** @type {any} */ b) => {
    header(b);
    channels.setFromBoot(b);
    if (state.view?.kind === 'channel') {
      const id = state.view.id;
      // A fresh boot may have changed what this channel is; draw it again from the store.
      view.showChannel(id, client.store.channel(id) ?? { id, name: id }, channels.mine.has(id));
      channels.select(id);
    } else if (!state.view) {
      openFirst();
    }
  });
  client.on('event', (/** @type {any} */ ev) => onEvent(ev));
  client.on('error', (/** @type {any} */ err) => console.warn('weft page:', err));
  $('app').hidden = false;
  members.setChannel('');
  // start() resolves once booted and rejects only when the client gives up (a refused token,
  // say), which the 'close' listener already shows.
  client.start().catch(() => {});
}

/** The header's team and signed-in person, from a boot (and the store after changes). @param {any} b */
function header(b) {
  const team = ui?.client.store.team ?? b.team;
  $('team-name').textContent = team?.name ?? '';
  const mark = $('team-mark');
  mark.textContent = initials(team?.name ?? '');
  mark.style.backgroundColor = colourFor(team?.id ?? '');
  const self = ui?.client.store.user(b.self.id) ?? b.self;
  $('me').replaceChildren(userAvatar(self, 'sm'), el('span', { class: 'me-name' }, displayName(self)));
  $('me').title = `${self.real_name} (@${self.name})`;
}

/** One event of the stream: its objects are in the store by now. @param {any} ev */
function onEvent(ev) {
  if (!ui) return;
  const { client, channels, view, members, status } = ui;
  const me = client.hello?.user ?? state.me?.id;
  status.seq();
  channels.apply(ev, me);
  if (History.keeps(ev)) {
    const at = state.history.add(ev);
    if (at >= 0) view.added(ev, at);
  }
  switch (ev.type) {
    case 'user_change':
      view.userChanged(ev.userId);
      if (ev.userId === me && client.lastBoot) header(client.lastBoot);
      break;
    case 'team_change':
      if (client.lastBoot) header(client.lastBoot);
      break;
    case 'channel_change':
      if (view.kind === 'channel' && view.id === ev.channelId) {
        const ch = client.store.channel(ev.channelId);
        if (ch) view.header(ch);
        members.showCount();
      }
      break;
    case 'member_joined':
    case 'member_left':
      if (view.kind !== 'channel' || view.id !== ev.channelId) break;
      members.showCount();
      // Joining or leaving the open channel decides whether its events come at all.
      if (ev.userId === me) view.showChannel(ev.channelId, client.store.channel(ev.channelId) ?? { id: ev.channelId, name: ev.channelId }, channels.mine.has(ev.channelId));
      break;
    case 'channel_deleted':
      if (view.kind === 'channel' && view.id === ev.channelId) open('channel', channels.first());
      break;
    default:
  }
}

// Ctrl-K and Cmd-K open the switcher from anywhere, before the browser takes the key for its
// own search bar.
document.addEventListener('keydown', (e) => {
  if (!ui || e.altKey || e.shiftKey || !(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== 'k') return;
  e.preventDefault();
  ui.switcher.open();
}, { capture: true });

window.addEventListener('hashchange', () => openFromHash());

$('switcher-open').addEventListener('click', () => ui?.switcher.open());
if (/Mac|iPhone|iPad/.test(navigator.platform)) {
  const kbd = $('switcher-open').querySelector('kbd');
  if (kbd) kbd.textContent = '⌘ K';
}

// The skip link moves the focus without touching the fragment, which names the open channel.
$('skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  $('view-title').focus();
});

showPicker(start);
