// Which parts of a Quick Switcher label to highlight. Pure functions, no DOM: the switcher
// draws the ranges, and test/highlight.test.js runs them under node --test.
//
// The edge matches a result when every query word starts some word of a name, comparing
// folded text: lower case, accents removed, and letters without a decomposition spelled as
// typed on a plain keyboard (index/fold.go). Highlighting has to fold the same way, or "jose"
// would find "José" but mark nothing. Folding can change length ("ß" is "ss"), so the words
// of a label are folded character by character, each folded character remembering which
// characters of the original it came from; a match found in folded text is then drawn on the
// original string.

// The letters index/fold.go spells out after lower-casing and removing marks.
const SPECIAL = {
  'ø': 'o', 'ł': 'l', 'đ': 'd', 'ð': 'd', 'þ': 'th', 'ß': 'ss', 'æ': 'ae', 'œ': 'oe',
  'ı': 'i', 'ħ': 'h', 'ŧ': 't', 'ŋ': 'n', 'ĸ': 'k', 'ſ': 's',
};

const MARKS = /\p{Mn}/gu;

// The edge splits names and queries on spaces, '-', '_' and '.'. A label adds its own
// decoration around the names it shows ("Vik (Sakura Nakamura)", "#general", "@sakura"), so
// '(', ')', '#' and '@' separate words here too: otherwise "(Sakura" would not start with "sa".
const SEPARATOR = /^[\s._\-()#@]$/u;

/** Whether the character ch (one code point) separates words. */
export function isSeparator(ch) {
  return SEPARATOR.test(ch);
}

/** Folds one code point the way index/fold.go's foldSlow does. */
export function foldChar(ch) {
  // Decompose, drop the accents, lower-case; marks again after lower-casing, since one letter
  // ('İ') lower-cases to a letter plus a mark.
  let f = ch.normalize('NFD').replace(MARKS, '').toLowerCase().replace(MARKS, '');
  if (f.length > 0) f = [...f].map((c) => SPECIAL[c] ?? c).join('');
  return f;
}

/** Folds a whole string: lower case, no accents, special letters spelled out. */
export function fold(s) {
  let out = '';
  for (const ch of s) out += foldChar(ch);
  return out;
}

/** The folded words of a query, as the edge takes them (it counts the first 16). */
export function queryWords(query) {
  const words = [];
  let cur = '';
  for (const ch of fold(query)) {
    if (isSeparator(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) words.push(cur);
  return words.slice(0, 16);
}

/**
 * The words of label, folded, each with a map from every folded character (UTF-16 unit) back
 * to the [start, end) of the original characters it came from.
 * @param {string} label
 * @returns {{folded: string, map: [number, number][]}[]}
 */
export function labelWords(label) {
  const words = [];
  /** @type {{folded: string, map: [number, number][]} | null} */
  let cur = null;
  let i = 0;
  for (const ch of label) {
    const start = i;
    i += ch.length;
    if (isSeparator(ch)) {
      cur = null;
      continue;
    }
    const f = foldChar(ch);
    if (!cur) {
      if (f === '') continue; // a mark with no letter before it: nothing to attach it to
      cur = { folded: '', map: [] };
      words.push(cur);
    }
    if (f === '') {
      // A combining mark ("e" + U+0301): it belongs to the letter before it, so a highlight
      // ending on that letter takes its accent along.
      const last = cur.map[cur.map.length - 1];
      if (last) last[1] = i;
      continue;
    }
    // Every folded unit of this character points at the whole character (one shared range,
    // so a mark that follows extends them all): a match that ends inside the "ss" of "ß"
    // highlights the ß, never half of it.
    /** @type {[number, number]} */
    const r = [start, i];
    for (let k = 0; k < f.length; k++) cur.map.push(r);
    cur.folded += f;
  }
  return words;
}

/**
 * The parts of label to highlight for query: in every word of label, the longest prefix that a
 * query word spells (after folding both). Ranges are [start, end) in label's UTF-16 units,
 * sorted and merged. A word that no query word starts (a typo-tolerant match, say) gets none.
 * @param {string} label
 * @param {string} query
 * @returns {[number, number][]}
 */
export function matchRanges(label, query) {
  const qs = queryWords(query);
  if (qs.length === 0 || !label) return [];
  /** @type {[number, number][]} */
  const ranges = [];
  for (const w of labelWords(label)) {
    let best = 0;
    for (const q of qs) if (q.length > best && w.folded.startsWith(q)) best = q.length;
    if (best > 0) ranges.push([w.map[0][0], w.map[best - 1][1]]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  /** @type {[number, number][]} */
  const merged = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/**
 * label cut into pieces along ranges, for drawing: [{text, hit}], in order, none empty.
 * @param {string} label
 * @param {[number, number][]} ranges sorted and disjoint, as matchRanges returns them
 */
export function segments(label, ranges) {
  const out = [];
  let at = 0;
  for (const [s, e] of ranges) {
    if (s > at) out.push({ text: label.slice(at, s), hit: false });
    if (e > s) out.push({ text: label.slice(s, e), hit: true });
    at = Math.max(at, e);
  }
  if (at < label.length) out.push({ text: label.slice(at), hit: false });
  return out;
}
