// The Quick Switcher: a modal dialog with a combobox whose every keystroke asks the edge's
// autocomplete (the point of weft is that this is answered from the edge's memory, fast
// enough to search as one types), and the time from keystroke to results on screen is
// recorded, as the page sees it, in window.weftPage.switcherLatencies.

import { el, avatar } from './render.js';
import { matchRanges, segments } from './highlight.js';

const LIMIT = 10;
/** A search refused as overloaded (the index still building, a reload) is asked again, this many times. */
const RETRIES = 3;

export class Switcher {
  /**
   * @param {{client: any, latencies: {query: string, ms: number}[],
   *   onChoose: (kind: 'channel' | 'dm', id: string) => void, fallbackFocus: () => HTMLElement}} o
   */
  constructor({ client, latencies, onChoose, fallbackFocus }) {
    this.client = client;
    this.latencies = latencies;
    this.onChoose = onChoose;
    this.fallbackFocus = fallbackFocus;
    this.root = /** @type {HTMLElement} */ (document.getElementById('switcher'));
    this.input = /** @type {HTMLInputElement} */ (document.getElementById('switcher-input'));
    this.list = /** @type {HTMLUListElement} */ (document.getElementById('switcher-results'));
    this.empty = /** @type {HTMLElement} */ (document.getElementById('switcher-empty'));
    this.status = /** @type {HTMLElement} */ (document.getElementById('switcher-status'));
    this.app = /** @type {HTMLElement} */ (document.getElementById('app'));
    /** @type {{type: string, id: string, name: string, label: string}[]} */ this.results = [];
    this.selected = -1;
    /** The latest keystroke: its number, query and time. */
    this.last = { n: 0, query: '', t0: 0 };
    /** The keystroke whose results are on screen. */
    this.shownFor = 0;
    /** Raised by every drawing, so a frame callback knows whether its drawing is still the one shown. */
    this.drawn = 0;
    /** Enter pressed before the results of the current query came: open the first when they do. */
    this.enterPending = false;
    /** @type {Element | null} */ this.returnTo = null;

    this.input.addEventListener('input', () => this.onInput());
    this.input.addEventListener('keydown', (e) => this.onKey(e));
    // Focus stays in the dialog while it is open: Tab has nowhere else to go, and anything
    // that takes focus elsewhere (a click on the page behind) gives it back to the input.
    this.root.addEventListener('keydown', (e) => { if (e.key === 'Tab') { e.preventDefault(); this.input.focus(); } });
    document.addEventListener('focusin', (e) => {
      if (this.isOpen() && e.target instanceof Node && !this.root.contains(e.target)) this.input.focus();
    });
    // A click on the backdrop closes; one on a result opens it. mousedown keeps the focus in the
    // input, where the keyboard keeps working.
    this.root.addEventListener('mousedown', (e) => { if (e.target !== this.input) e.preventDefault(); });
    this.root.addEventListener('click', (e) => {
      if (e.target === this.root) return this.close();
      const li = e.target instanceof Element ? e.target.closest('li.sw-result') : null;
      if (li) this.choose(Number(/** @type {HTMLElement} */ (li).dataset.index));
      return undefined;
    });
    this.list.addEventListener('mousemove', (e) => {
      const li = e.target instanceof Element ? e.target.closest('li.sw-result') : null;
      const i = li ? Number(/** @type {HTMLElement} */ (li).dataset.index) : -1;
      if (i >= 0 && i !== this.selected) this.select(i, false);
    });
  }

  isOpen() { return !this.root.hidden; }

  /** Opens the switcher empty, with the focus in its input. */
  open() {
    if (this.isOpen()) {
      this.input.focus();
      this.input.select();
      return;
    }
    this.returnTo = document.activeElement;
    this.root.hidden = false;
    // The page behind is inert while the dialog is up: out of the tab order and of what a
    // screen reader offers, as aria-modal promises.
    this.app.inert = true;
    this.input.value = '';
    this.last = { n: this.last.n + 1, query: '', t0: performance.now() };
    this.draw('', [], null);
    this.input.focus();
  }

  /** Closes; the focus goes back where it was, unless restore is false (a result was opened). */
  close(restore = true) {
    if (!this.isOpen()) return;
    this.root.hidden = true;
    this.app.inert = false;
    this.enterPending = false;
    const back = this.returnTo;
    this.returnTo = null;
    if (!restore) return;
    if (back instanceof HTMLElement && back.isConnected && back !== document.body && !back.closest('[hidden]')) back.focus();
    else this.fallbackFocus().focus();
  }

  /** Every keystroke asks the edge; an empty query asks nothing and clears. */
  onInput() {
    const query = this.input.value;
    const n = this.last.n + 1;
    this.last = { n, query, t0: performance.now() };
    this.enterPending = false;
    if (query.trim() === '') {
      this.shownFor = n;
      this.draw(query, [], null);
      return;
    }
    this.ask(query, 0);
  }

  /** @param {string} query @param {number} attempt */
  ask(query, attempt) {
    this.client.autocomplete({ query, types: ['users', 'channels'], limit: LIMIT }).then(
      (/** @type {any} */ r) => this.answered(query, r.results ?? []),
      (/** @type {any} */ err) => this.failed(query, err, attempt));
  }

  /**
   * A reply. One for a query the input no longer holds is dropped (its keystroke was superseded,
   * and it records no latency). Replies come in the order asked, so the one for the current
   * text is the newest; should an older one for the same text come first, it is shown, and
   * its latency counted from the keystroke that made the current text.
   * @param {string} query @param {any[]} results
   */
  answered(query, results) {
    if (!this.isOpen() || query !== this.input.value || this.shownFor === this.last.n) return;
    this.shownFor = this.last.n;
    this.replyMs = performance.now() - this.last.t0;
    this.draw(query, results, this.last.t0);
    if (this.enterPending && this.results.length > 0) this.choose(0);
  }

  /** @param {string} query @param {any} err @param {number} attempt */
  failed(query, err, attempt) {
    if (!this.isOpen() || query !== this.input.value || this.shownFor === this.last.n) return;
    if (err?.retryAfterMs > 0 && attempt < RETRIES) {
      setTimeout(() => { if (query === this.input.value) this.ask(query, attempt + 1); }, err.retryAfterMs);
      return;
    }
    this.shownFor = this.last.n;
    this.draw(query, [], null, `Search failed: ${err?.code ?? err?.message ?? err}`);
  }

  /**
   * Puts results on screen. data-query says which query they answer, and the latency is taken,
   * at the next animation frame: the frame that paints the new list starts then, which is the
   * best a page can see of "shown" (a paint has no event of its own). Both wait for that frame
   * so that a test that sees data-query also sees the latency.
   * @param {string} query @param {any[]} results @param {number | null} t0 null: no latency to record
   * @param {string} [error]
   */
  draw(query, results, t0, error = '') {
    this.results = results;
    this.list.replaceChildren(...results.map((r, i) => this.option(r, i, query)));
    this.input.setAttribute('aria-expanded', String(results.length > 0));
    this.select(results.length > 0 ? 0 : -1, true);
    const blank = query.trim() === '';
    this.empty.hidden = blank || results.length > 0;
    this.empty.textContent = error || (blank ? '' : `No people or channels match “${query}”.`);
    this.empty.classList.toggle('error', !!error);
    this.status.textContent = blank ? '' : error || `${results.length} result${results.length === 1 ? '' : 's'}`;
    // The list is in the DOM now; the frame that paints it comes later. Each keystroke keeps
    // three times from its input event: the reply's arrival (replyMs), the list in the DOM
    // (domMs) and the frame (ms, what a person sees): what is weft's and what the browser's.
    const domMs = t0 === null ? 0 : performance.now() - t0;
    const drawn = ++this.drawn;
    const shown = () => {
      if (drawn !== this.drawn) return; // replaced before it was painted: it was never shown
      this.list.dataset.query = query;
      if (error) this.list.dataset.error = 'true';
      else delete this.list.dataset.error;
      if (t0 !== null) {
        this.latencies.push({ query, ms: round(performance.now() - t0), domMs: round(domMs), replyMs: round(this.replyMs) });
      }
    };
    // A hidden page gets no frames: say it at once rather than never.
    if (document.visibilityState === 'hidden') shown();
    else requestAnimationFrame(shown);
  }

  /** One result. @param {any} r @param {number} i @param {string} query */
  option(r, i, query) {
    const li = el('li', { role: 'option', id: `sw-opt-${i}`, class: 'sw-result', 'data-type': r.type, 'data-id': r.id,
      'data-index': i, 'aria-selected': 'false' });
    if (r.type === 'channel') {
      // The label is "#name": the # is drawn as the icon, the name beside it.
      const name = String(r.label ?? `#${r.name}`).replace(/^#/, '');
      li.setAttribute('aria-label', `${name}, channel`);
      li.append(el('span', { class: 'sw-icon', 'aria-hidden': 'true' }, '#'), marked('sw-label', name, query));
    } else {
      // Results carry no User; the store's copy, when there is one, gives the monogram the
      // same initials as in messages (from the real name, the part in parentheses of a label).
      const u = this.client.store.user(r.id);
      const name = u ? (u.real_name || u.display_name || u.name) : String(r.label ?? '').replace(/^.*\((.*)\)$/, '$1');
      li.append(avatar({ id: r.id, name, avatarUrl: u?.avatar_url, size: 'sm' }),
        marked('sw-label', r.label ?? r.name, query),
        el('span', { class: 'sw-name' }, '@', marked('sw-handle', r.name ?? '', query)));
    }
    return li;
  }

  /** @param {number} i @param {boolean} scroll */
  select(i, scroll) {
    this.selected = i;
    const items = this.list.children;
    for (let k = 0; k < items.length; k++) items[k].setAttribute('aria-selected', String(k === i));
    if (i >= 0) {
      this.input.setAttribute('aria-activedescendant', `sw-opt-${i}`);
      if (scroll) items[i]?.scrollIntoView({ block: 'nearest' });
    } else this.input.removeAttribute('aria-activedescendant');
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    if (e.isComposing) return; // an input method is still composing: its keys are its own
    const n = this.results.length;
    switch (e.key) {
      case 'ArrowDown':
      case 'ArrowUp':
        e.preventDefault(); // the caret stays where it is
        if (n > 0) this.select((this.selected + (e.key === 'ArrowDown' ? 1 : -1) + n) % n, true);
        return;
      case 'Enter':
        e.preventDefault();
        if (this.shownFor !== this.last.n) this.enterPending = true; // typed faster than the edge answered
        else if (this.selected >= 0) this.choose(this.selected);
        return;
      case 'Escape':
        e.preventDefault();
        this.close();
        return;
      default:
    }
  }

  /** Opens result i and closes; the focus goes to the view that opened. @param {number} i */
  choose(i) {
    const r = this.results[i];
    if (!r) return;
    this.close(false);
    this.onChoose(r.type === 'user' ? 'dm' : 'channel', r.id);
  }
}

/** A span of text with the parts query starts in <mark>. @param {string} cls @param {string} text @param {string} query */
function marked(cls, text, query) {
  const span = el('span', { class: cls });
  for (const s of segments(text, matchRanges(text, query))) span.append(s.hit ? el('mark', {}, s.text) : s.text);
  return span;
}

/** Milliseconds to a tenth. @param {number} ms */
function round(ms) { return Math.round(ms * 10) / 10; }
