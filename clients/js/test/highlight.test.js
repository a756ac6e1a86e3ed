// The Quick Switcher's highlighting (page/highlight.js): pure, no server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fold, queryWords, matchRanges, segments } from '../page/highlight.js';

// The highlighted parts of label, to compare readably.
const marked = (label, query) => segments(label, matchRanges(label, query))
  .map((s) => (s.hit ? `[${s.text}]` : s.text)).join('');

test('fold as index/fold.go does', () => {
  assert.equal(fold('José Núñez'), 'jose nunez');
  assert.equal(fold('Bjørn Łukasz Đorđe Þór'), 'bjorn lukasz dorde thor');
  assert.equal(fold('Käthe Groß'), 'kathe gross');
  assert.equal(fold('Æsir Œuvre'), 'aesir oeuvre');
  assert.equal(fold('İstanbul'), 'istanbul');
  assert.equal(fold('Jose\u0301'), 'jose', 'a decomposed accent goes too');
  assert.deepEqual(queryWords('  Sak.NAK-x_y  '), ['sak', 'nak', 'x', 'y']);
  assert.equal(queryWords('a b c d e f g h i j k l m n o p q r').length, 16, 'the edge counts 16 words');
});

test('ascii prefixes', () => {
  assert.deepEqual(matchRanges('Sakura Nakamura', 'sak'), [[0, 3]]);
  assert.equal(marked('sakura.nakamura', 'nak'), 'sakura.[nak]amura');
  assert.equal(marked('#proj-lighthouse-mobile', 'mob'), '#proj-lighthouse-[mob]ile');
  assert.equal(marked('#general', 'general'), '#[general]', 'a whole word');
  assert.equal(marked('Vik (Sakura Nakamura)', 'sa'), 'Vik ([Sa]kura Nakamura)', 'a word after a parenthesis');
});

test('case is ignored both ways', () => {
  assert.equal(marked('Sakura Nakamura', 'SAK'), '[Sak]ura Nakamura');
  assert.equal(marked('WEI WU', 'wei'), '[WEI] WU');
});

test('diacritics, marked on the original letters', () => {
  assert.equal(marked('José Núñez', 'jose nun'), '[José] [Núñ]ez');
  assert.equal(marked('Nagy Zoltán', 'zolta'), 'Nagy [Zoltá]n');
  assert.equal(marked('Bjørn Løvås', 'lov'), 'Bjørn [Løv]ås');
  assert.equal(marked('Łukasz', 'luk'), '[Łuk]asz');
  assert.equal(marked('Đorđe', 'dord'), '[Đorđ]e');
  assert.equal(marked('Þórdís', 'thor'), '[Þór]dís');
  assert.equal(marked('Æsa', 'ae'), '[Æ]sa');
  assert.equal(marked('Œuvre', 'oeu'), '[Œu]vre');
  // Decomposed input: the accent is a character of its own and goes with its letter.
  const s = 'Jose\u0301 Nun\u0303ez';
  assert.deepEqual(matchRanges(s, 'jose nun'), [[0, 5], [6, 10]]);
});

test('ß is two letters folded and one shown', () => {
  assert.equal(marked('Käthe Groß', 'gross'), 'Käthe [Groß]');
  assert.equal(marked('Käthe Groß', 'gro'), 'Käthe [Gro]ß');
  // A query that ends halfway through the "ss" still marks the whole ß, never half a letter.
  assert.equal(marked('Käthe Groß', 'gros'), 'Käthe [Groß]');
  assert.equal(marked('Straße Nord', 'strasse no'), '[Straße] [No]rd');
  // Offsets after an expansion stay those of the original string.
  assert.deepEqual(matchRanges('Groß Käthe', 'kä'), [[5, 7]]);
});

test('several words, each marking its own prefix', () => {
  assert.equal(marked('Vik (Sakura Nakamura)', 'vi naka'), '[Vi]k (Sakura [Naka]mura)');
  assert.equal(marked('Vik (Sakura Nakamura)', 'naka vi'), '[Vi]k (Sakura [Naka]mura)', 'order does not matter');
  assert.equal(marked('Anna Annabel', 'ann annab'), '[Ann]a [Annab]el', 'the longest query word that fits wins');
  assert.equal(marked('Mary Mars', 'ma'), '[Ma]ry [Ma]rs', 'a query word may start several words');
  assert.deepEqual(matchRanges('ab-cd', 'ab cd'), [[0, 2], [3, 5]], 'adjacent words stay separate ranges');
});

test('no match, nothing marked', () => {
  assert.deepEqual(matchRanges('Nagy Zoltán', 'jhon'), [], 'a typo-tolerant result');
  assert.deepEqual(matchRanges('Sakura Nakamura', 'kura'), [], 'inside a word is not a prefix');
  assert.deepEqual(matchRanges('Sakura', ''), []);
  assert.deepEqual(matchRanges('Sakura', ' . - '), [], 'separators only');
  assert.deepEqual(matchRanges('', 'sak'), []);
  assert.equal(marked('Nagy Zoltán', 'jhon'), 'Nagy Zoltán');
});

test('segments cover the label exactly', () => {
  const label = 'Vik (Sakura Nakamura)';
  const segs = segments(label, [[0, 1], [5, 8]]);
  assert.equal(segs.map((s) => s.text).join(''), label);
  assert.deepEqual(segs.filter((s) => s.hit).map((s) => s.text), ['V', 'Sak']);
  assert.deepEqual(segments('abc', []), [{ text: 'abc', hit: false }]);
});
