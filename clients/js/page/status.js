// The connection state in the header (#conn-state) and the session line under the channels
// (#hello-info). The client's own states are connecting, booting, open, reconnecting and
// closed; the page shows connecting, open, reconnecting, resumed and closed: booting is part
// of connecting for a person, and a resume is worth telling apart from a fresh start (nothing
// was missed, and no boot was needed).

/** Words for goodbye reasons (docs/protocol.md section 3); unknown ones are shown as sent. */
const REASONS = {
  draining: 'edge draining',
  moved: 'team moved to another edge',
  slow_consumer: 'too slow to keep up',
  token_expired: 'token expired',
  policy: 'protocol violation',
  account_inactive: 'account deactivated',
  overloaded: 'edge overloaded',
};

export class ConnStatus {
  /** @param {HTMLElement} box #conn-state @param {HTMLElement} info #hello-info */
  constructor(box, info) {
    this.box = box;
    this.info = info;
    this.resumes = 0;
    this.state = 'connecting';
    this.lastResumed = false;
    this.booted = false;
    /** @type {any} */ this.timer = null;
    /** @type {(() => void) | null} */ this.onChange = null;
  }

  /** Listens to client; call before client.start() so that no state goes unseen. @param {any} client */
  attach(client) {
    this.client = client;
    client.on('state', (/** @type {string} */ s) => this.onState(s));
    client.on('hello', (/** @type {any} */ h) => this.onHello(h));
    client.on('reconnect', (/** @type {any} */ r) => this.onReconnect(r));
    client.on('close', (/** @type {any} */ err) => this.onClose(err));
    client.on('boot', () => { this.booted = true; });
  }

  /**
   * @param {string} state
   * @param {string | (string | Node)[]} content the text, or its parts
   * @param {string} [title]
   */
  show(state, content, title = '') {
    if (state !== 'reconnecting') this.stopCountdown();
    this.state = state;
    this.box.dataset.state = state;
    if (typeof content === 'string') this.box.textContent = content;
    else this.box.replaceChildren(...content);
    const text = this.box.textContent ?? '';
    // The full text on hover: a long reason is cut short in the header.
    this.box.title = title ? `${text}: ${title}` : text;
    this.onChange?.();
  }

  /** @param {string} s */
  onState(s) {
    switch (s) {
      case 'connecting':
        return this.show('connecting', 'Connecting…');
      case 'booting':
        // A boot after a reconnect that could not resume: the state is reloaded.
        return this.show('connecting', this.booted ? 'Catching up…' : 'Connecting…');
      case 'open':
        // A resumed hello is followed at once by 'open': keep saying "Resumed" until the next
        // change, as the resume is the news.
        return this.lastResumed ? this.show('resumed', 'Resumed') : this.show('open', 'Connected');
      case 'reconnecting':
        // The 'reconnect' event that follows says how long; until then, no number.
        return this.show('reconnecting', 'Reconnecting…');
      case 'closed':
        return this.show('closed', 'Disconnected');
      default:
        return undefined;
    }
  }

  /** @param {any} h */
  onHello(h) {
    this.lastResumed = !!h.resumed;
    if (h.resumed) {
      this.resumes++;
      this.box.dataset.resumes = String(this.resumes);
      this.show('resumed', 'Resumed');
    }
    this.info.dataset.node = h.node ?? '';
    this.info.dataset.region = h.region ?? '';
    this.info.title = `session ${h.session}`;
    this.seq();
  }

  /** Refreshes the session line with the stream position. */
  seq() {
    const h = this.client?.hello;
    if (!h) return;
    const seq = this.client.seq;
    this.info.dataset.seq = String(seq);
    const line = (/** @type {string} */ text) => Object.assign(document.createElement('span'), { textContent: text });
    this.info.replaceChildren(line(`edge ${h.node} · region ${h.region}`), ' ', line(`event seq ${seq}`));
  }

  /** Counts down to the next dial, once a second, from the client's own wait. @param {any} r */
  onReconnect(r) {
    const reason = r.goodbye?.reason ? REASONS[/** @type {keyof REASONS} */ (r.goodbye.reason)] ?? r.goodbye.reason : '';
    const why = r.error?.message ?? (r.error ? String(r.error) : '');
    const deadline = performance.now() + Math.max(0, r.waitMs ?? 0);
    this.stopCountdown();
    // The seconds are hidden from screen readers and change in place: #conn-state is a live
    // region, and a number changing every second would be read out every second.
    // "Reconnecting (edge draining)" is said once per attempt instead.
    const secs = document.createElement('span');
    secs.setAttribute('aria-hidden', 'true');
    let first = true;
    const tick = () => {
      const left = Math.ceil((deadline - performance.now()) / 1000);
      secs.textContent = ` in ${left} s`;
      if (left <= 0) this.show('reconnecting', reason ? `Reconnecting… (${reason})` : 'Reconnecting…', why);
      else if (first) this.show('reconnecting', ['Reconnecting', secs, reason ? ` (${reason})` : '…'], why);
      else this.box.title = why ? `${this.box.textContent}: ${why}` : this.box.textContent ?? '';
      first = false;
      if (left <= 0) return;
      // Wake when the shown number changes, not merely every 1000 ms after now, so the count
      // does not drift against the real wait.
      const untilNext = (deadline - performance.now()) - (left - 1) * 1000;
      this.timer = setTimeout(tick, Math.max(50, untilNext));
    };
    tick();
  }

  /** @param {any} err */
  onClose(err) {
    if (!err) return this.show('closed', 'Disconnected');
    const code = err.code ?? '';
    return this.show('closed', `Disconnected: ${code || err.message || err}`, err.message ?? '');
  }

  stopCountdown() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
