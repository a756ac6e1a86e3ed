// The member list of the open channel, paged lazily: weft's boot sends no member lists (a
// channel of a big team can have tens of thousands), so the page asks channels.members for 50
// IDs at a time, the first page when the pane opens and the next when the reader scrolls near
// the end. The users behind a page's IDs that the store does not hold yet are fetched in one
// users.info per page: the one place the page asks for users, since events bring theirs along.

import { el, userAvatar, displayName } from './render.js';

const PAGE = 50;

export class Members {
  /** @param {any} client */
  constructor(client) {
    this.client = client;
    this.pane = /** @type {HTMLElement} */ (document.getElementById('members-pane'));
    this.list = /** @type {HTMLUListElement} */ (document.getElementById('members'));
    this.toggle = /** @type {HTMLButtonElement} */ (document.getElementById('members-toggle'));
    this.count = /** @type {HTMLElement} */ (document.getElementById('members-count'));
    this.closeButton = /** @type {HTMLButtonElement} */ (document.getElementById('members-close'));
    this.channel = '';
    this.open = false;
    this.cursor = '';
    this.pages = 0;
    this.complete = false;
    this.loading = false;
    /** Raised by every reset: a reply for an older list is dropped. */
    this.gen = 0;
    /** @type {HTMLElement | null} */ this.sentinel = null;
    // Watch the sentinel within the list's own scroll box, and a little ahead of its end, so the
    // next page is usually there before the reader reaches it.
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadNext();
    }, { root: this.list, rootMargin: '0px 0px 200px 0px' });
    this.toggle.addEventListener('click', () => this.setOpen(!this.open));
    this.closeButton.addEventListener('click', () => {
      this.setOpen(false);
      this.toggle.focus();
    });
  }

  /** Shows the list of a channel ('' for none: a person's view has no members). @param {string} id */
  setChannel(id) {
    this.channel = id;
    this.toggle.hidden = !id;
    this.showCount();
    if (!id) this.setOpen(false);
    else this.reset();
  }

  /** The member count the store's channel object gives, beside the toggle. */
  showCount() {
    const n = this.channel ? this.client.store.channel(this.channel)?.member_count : undefined;
    this.count.textContent = typeof n === 'number' ? ` ${n}` : '';
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.open = open && !!this.channel;
    this.pane.hidden = !this.open;
    this.toggle.setAttribute('aria-expanded', String(this.open));
    document.getElementById('app')?.classList.toggle('members-open', this.open);
    this.reset();
  }

  /** Empties the list and, when the pane is open, starts again from the first page. */
  reset() {
    this.gen++;
    this.observer.disconnect();
    this.cursor = '';
    this.pages = 0;
    this.complete = false;
    this.loading = false;
    this.list.dataset.pages = '0';
    delete this.list.dataset.complete;
    this.sentinel = null;
    this.list.replaceChildren();
    if (!this.open || !this.channel) return;
    this.sentinel = el('li', { id: 'members-more', class: 'members-more' }, 'Loading members…');
    this.list.append(this.sentinel);
    this.loadNext();
  }

  /** Loads the next page, unless one is loading or the list is complete. */
  async loadNext() {
    if (this.loading || this.complete || !this.open || !this.channel) return;
    const gen = this.gen;
    const channel = this.channel;
    const sentinel = /** @type {HTMLElement} */ (this.sentinel);
    this.loading = true;
    let ok = false;
    sentinel.textContent = 'Loading members…';
    try {
      const page = await this.client.channelsMembers({ channel, cursor: this.cursor || undefined, limit: PAGE });
      if (gen !== this.gen) return;
      const ids = page.members ?? [];
      const store = this.client.store;
      const unknown = ids.filter((/** @type {string} */ id) => !store.user(id));
      if (unknown.length > 0) await this.client.usersInfo(unknown);
      if (gen !== this.gen) return;
      for (const id of ids) sentinel.before(this.item(id));
      this.pages++;
      this.list.dataset.pages = String(this.pages);
      this.cursor = page.next_cursor ?? '';
      if (!this.cursor) {
        this.complete = true;
        this.list.dataset.complete = 'true';
        sentinel.remove();
        this.sentinel = null;
        this.observer.disconnect();
        if (this.pages === 1 && ids.length === 0) this.list.append(el('li', { class: 'members-none' }, 'No members.'));
      } else {
        sentinel.textContent = 'More members…';
      }
      ok = true;
    } catch (err) {
      if (gen !== this.gen) return;
      const e = /** @type {any} */ (err);
      const retry = el('button', { type: 'button', class: 'link-button' }, 'Try again');
      retry.addEventListener('click', () => this.loadNext());
      sentinel.replaceChildren(`Could not load members (${e?.code ?? e?.message ?? e}). `, retry);
    } finally {
      if (gen === this.gen) this.loading = false;
    }
    if (ok && gen === this.gen && !this.complete && this.sentinel) {
      // An observer reports changes only: when the sentinel is still in view after a page (a
      // tall pane, short pages), observing it anew reports it again and the next page follows.
      // Not after a failure, which waits for "Try again" instead of retrying in a loop.
      this.observer.unobserve(this.sentinel);
      this.observer.observe(this.sentinel);
    }
  }

  /** One member, from the store. @param {string} id */
  item(id) {
    const u = this.client.store.user(id);
    const li = el('li', { class: 'member', 'data-user': id });
    if (!u) {
      li.classList.add('unknown-member');
      li.append(el('span', { class: 'avatar avatar-sm', 'aria-hidden': 'true' }, '?'), el('span', { class: 'member-name' }, id));
      return li;
    }
    if (u.deleted) li.classList.add('deleted');
    li.append(userAvatar(u, 'sm'),
      el('span', { class: 'member-name' }, displayName(u)),
      u.title ? el('span', { class: 'member-title' }, u.title) : '');
    return li;
  }
}
