// The sidebar's channel list: the caller's channels, as boot listed them and as events change
// them since (joins, leaves, renames, deletions). Names come from the client's store, which
// applies every channel object an event or reply carries, newest version first.

import { el } from './render.js';

export class ChannelList {
  /** @param {any} client @param {HTMLElement} ul #channels */
  constructor(client, ul) {
    this.client = client;
    this.ul = ul;
    /** @type {Set<string>} the caller's channels */ this.mine = new Set();
    /** @type {Map<string, HTMLAnchorElement>} */ this.links = new Map();
    /** @type {Set<string>} channels with messages since they were last open */ this.unread = new Set();
    this.selected = '';
  }

  /** Replaces the list with a boot's channels (every boot that did not resume). @param {any} boot */
  setFromBoot(boot) {
    this.mine = new Set((boot.channels ?? []).map((/** @type {any} */ c) => c.id));
    this.render();
  }

  /**
   * Follows an event that may change the list. Returns whether it did.
   * @param {any} ev @param {string} me the caller's user ID
   */
  apply(ev, me) {
    switch (ev.type) {
      case 'member_joined':
        if (ev.userId !== me) return false;
        this.mine.add(ev.channelId);
        break;
      case 'member_left':
        if (ev.userId !== me) return false;
        this.mine.delete(ev.channelId);
        break;
      case 'channel_created':
        // The creator is the first member, and no member_joined is sent for them.
        if (ev.channel?.creator !== me) return false;
        this.mine.add(ev.channelId);
        break;
      case 'channel_deleted':
        if (!this.mine.delete(ev.channelId)) return false;
        break;
      case 'channel_change':
      case 'message':
        if (!this.mine.has(ev.channelId)) return false;
        break;
      default:
        return false;
    }
    if (ev.type === 'message' && ev.channelId !== this.selected) this.unread.add(ev.channelId);
    this.render();
    return true;
  }

  /** The caller's channels, by name. */
  sorted() {
    const store = this.client.store;
    return [...this.mine]
      .map((id) => store.channel(id) ?? { id, name: id })
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** The channel to open first: #general when the caller is in it, else the first by name. */
  first() {
    const list = this.sorted();
    return (list.find((c) => c.name === 'general') ?? list[0])?.id ?? '';
  }

  /** Marks the open channel (aria-current) and clears its unread mark. @param {string} id */
  select(id) {
    this.selected = id;
    this.unread.delete(id);
    this.render();
  }

  /**
   * Draws the list, reusing links where it can: a link that is rebuilt or moved loses focus,
   * and a keyboard user reading the list must not be thrown out of it by a message elsewhere.
   */
  render() {
    const list = this.sorted();
    const order = list.map((c) => c.id);
    const same = order.length === this.ul.children.length &&
      order.every((id, i) => /** @type {HTMLElement | null} */ (this.ul.children[i].firstElementChild)?.dataset.channel === id);
    if (!same) {
      const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.channel : undefined;
      /** @type {Map<string, HTMLAnchorElement>} */ const links = new Map();
      const items = list.map((c) => {
        const a = this.links.get(c.id) ?? /** @type {HTMLAnchorElement} */ (el('a', { href: `#${c.id}`, 'data-channel': c.id }));
        links.set(c.id, a);
        return el('li', {}, a);
      });
      this.links = links;
      this.ul.replaceChildren(...items);
      if (focused && links.has(focused)) links.get(focused)?.focus();
    }
    for (const c of list) {
      const a = /** @type {HTMLAnchorElement} */ (this.links.get(c.id));
      const text = `#${c.name}`;
      if (a.textContent !== text) a.textContent = text;
      if (c.id === this.selected) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
      a.classList.toggle('private', !!c.is_private);
      a.classList.toggle('archived', !!c.is_archived);
      if (this.unread.has(c.id)) a.dataset.unread = 'true';
      else delete a.dataset.unread;
    }
  }
}
