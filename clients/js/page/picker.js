// The user picker: who to be, chosen before anything connects. weft has no login (tokens come
// from the deployment's own), so `weft dev` lists a few people of each team with ready
// tokens at /dev/users, for this page only.

import { el, colourFor, initials } from './render.js';

/**
 * @typedef {{team: string, team_name: string, id: string, name: string, real_name: string,
 *   display_name: string, title: string, token: string}} DevUser
 */

/**
 * Shows the picker and calls onPick with the chosen person. A location with ?user=U…&team=T…
 * picks that person at once, so a reload comes back as the same person.
 * @param {(u: DevUser) => void} onPick
 */
export async function showPicker(onPick) {
  const section = /** @type {HTMLElement} */ (document.getElementById('picker'));
  const status = /** @type {HTMLElement} */ (document.getElementById('picker-status'));
  const teams = /** @type {HTMLElement} */ (document.getElementById('picker-teams'));
  section.hidden = false;

  /** @type {DevUser[]} */
  let users;
  try {
    const res = await fetch('/dev/users', { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    users = (await res.json()).users ?? [];
  } catch (err) {
    status.textContent = `Could not load the people of the demo world (${err instanceof Error ? err.message : err}). Is this page served by weft dev?`;
    status.classList.add('error');
    return;
  }
  if (users.length === 0) {
    status.textContent = 'The demo world has nobody to sign in as.';
    return;
  }

  const pick = (/** @type {DevUser} */ u) => {
    section.hidden = true;
    // Remember who was picked in the address, keeping the fragment (the open channel).
    const q = new URLSearchParams(location.search);
    q.set('user', u.id);
    q.set('team', u.team);
    history.replaceState(history.state, '', `${location.pathname}?${q}${location.hash}`);
    onPick(u);
  };

  const want = new URLSearchParams(location.search);
  const auto = users.find((u) => u.id === want.get('user') && (!want.get('team') || u.team === want.get('team')));
  if (auto) {
    pick(auto);
    return;
  }

  /** @type {Map<string, {name: string, users: DevUser[]}>} */
  const byTeam = new Map();
  for (const u of users) {
    if (!byTeam.has(u.team)) byTeam.set(u.team, { name: u.team_name || u.team, users: [] });
    /** @type {any} */ (byTeam.get(u.team)).users.push(u);
  }
  const groups = [];
  for (const [team, g] of byTeam) {
    const headingId = `picker-team-${team}`;
    const buttons = g.users.map((u) => {
      const b = el('button', { type: 'button', class: 'pick', 'data-user': u.id, 'data-team': u.team },
        u.real_name || u.display_name || u.name, ' ',
        el('small', {}, `@${u.name}${u.title ? ` · ${u.title}` : ''}`));
      // The monogram is drawn by CSS from these (::before, with empty alternative text), so the
      // button's text and accessible name stay the person's name alone.
      b.dataset.initials = initials(u.real_name || u.display_name || u.name);
      b.style.setProperty('--avatar-bg', colourFor(u.id));
      b.addEventListener('click', () => pick(u));
      return b;
    });
    groups.push(el('div', { class: 'picker-team', role: 'group', 'aria-labelledby': headingId },
      el('h2', { id: headingId }, g.name),
      el('div', { class: 'pick-list' }, ...buttons)));
  }
  teams.replaceChildren(...groups);
  status.textContent = `${users.length} people in ${byTeam.size} team${byTeam.size === 1 ? '' : 's'}`;
  status.classList.add('visually-hidden');
  /** @type {HTMLElement | null} */ (teams.querySelector('button.pick'))?.focus();
}
