// Reconnect backoff (Go: client/backoff.go), for client.js.

/** @typedef {{minMs?: number, maxMs?: number, stableAfterMs?: number}} BackoffOptions */

/** The jitter window of attempt n (0: the first retry): min(max, min·2ⁿ). */
export function backoffWindow(/** @type {Required<BackoffOptions>} */ b, /** @type {number} */ n) {
  let w = b.minMs;
  for (let i = 0; i < n; i++) {
    if (w >= b.maxMs / 2) return b.maxMs;
    w *= 2;
  }
  return Math.min(w, b.maxMs);
}

/**
 * How long to wait before attempt n: a goodbye's reconnect_after_ms exactly; a retry-after plus
 * a random share of the window; otherwise full jitter over the window.
 * @param {Required<BackoffOptions>} b @param {number} n @param {{afterMs: number, goodbye: boolean}} hint
 * @param {() => number} [rand]
 */
export function backoffDelay(b, n, hint, rand = Math.random) {
  const jitter = () => Math.floor(rand() * backoffWindow(b, n));
  if (hint.goodbye) return hint.afterMs;
  if (hint.afterMs > 0) return hint.afterMs + jitter();
  return jitter();
}

