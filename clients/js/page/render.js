// Small DOM helpers shared by the page's modules: element building, monogram avatars, names,
// times. Text always goes in through textContent (never innerHTML): message text and names
// come from other people.

/**
 * Creates an element. attrs: attributes (class, data-*, aria-*…; null/false leave one out);
 * children: strings and nodes.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/**
 * FNV-1a with a final mix: a stable small hash, so one person keeps one colour on every page
 * and reload. The mix matters: IDs like U00000001 and U00000002 differ in their last character
 * only, and FNV alone would step their hues by a constant, in stripes.
 */
function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The monogram's background for an ID. Saturation and lightness are fixed and dark enough
 * for white initials to keep a 4.5:1 contrast on every hue.
 */
export function colourFor(id) {
  const hue = hash(id) % 360;
  return `hsl(${hue} 50% 31%)`;
}

/** Up to two initials: of the first and the last word of a name. */
export function initials(name) {
  const words = String(name || '?').split(/[\s._\-()]+/u).filter(Boolean);
  if (words.length === 0) return '?';
  const first = [...words[0]][0] ?? '';
  const last = words.length > 1 ? [...words[words.length - 1]][0] ?? '' : '';
  return (first + last).toLocaleUpperCase();
}

/**
 * A monogram avatar: initials on a colour derived from the ID. The reference world's
 * avatar_url points under avatars.example.com, a reserved name that never resolves (and the
 * page's Content-Security-Policy allows images from its own origin only), so the picture
 * itself is never fetched; its URL stays on the element as data-avatar-url, where a real
 * deployment would swap in an <img>.
 * @param {{id: string, name?: string, label?: string, avatarUrl?: string, size?: 'sm' | 'md' | 'lg'}} p
 */
export function avatar({ id, name, avatarUrl, size = 'md' }) {
  const a = el('span', { class: `avatar avatar-${size}`, 'aria-hidden': 'true', 'data-avatar-url': avatarUrl ?? null },
    initials(name ?? id));
  a.style.backgroundColor = colourFor(id); // CSSOM, which the CSP allows (a style attribute it would not)
  return a;
}

/** A User's avatar, from the store's copy. @param {any} u */
export function userAvatar(u, size = 'md') {
  return avatar({ id: u.id, name: u.real_name || u.display_name || u.name, avatarUrl: u.avatar_url ?? '', size });
}

/** The name people see: the display name, else the real name, else the handle. @param {any} u */
export function displayName(u) {
  return u?.display_name || u?.real_name || u?.name || '';
}

/** A Slack ts ("1796305516.576089") as a Date. */
export function tsDate(ts) {
  const s = Number.parseFloat(ts);
  return Number.isFinite(s) ? new Date(s * 1000) : null;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** <time> of a Slack ts: the clock time shown, the full date on hover and in datetime. */
export function timeEl(ts) {
  const d = tsDate(ts);
  if (!d) return el('time', {}, '');
  return el('time', { datetime: d.toISOString(), title: full.format(d) }, clock.format(d));
}

/** The local time now in a time zone, for a person's card ("14:05"); '' for an unknown zone. */
export function localTime(tz) {
  try {
    return new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', timeZone: tz }).format(new Date());
  } catch {
    return '';
  }
}

/** Whether the user prefers no animation (scrolling included). */
export function reducedMotion() {
  return window.matchMedia?.('(prefers-reduced-motion: reduce)').matches ?? false;
}
