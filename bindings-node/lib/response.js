'use strict'
// Hand-written: response metadata (per-call control). Every result made from one answer
// (a resource, a page, a list) and every error with an answer has a non-enumerable
// `lastResponse`: `status`, `headers`, `requestId`, `idempotentReplayed`, `rateLimit`
// (`{ limit, remaining, reset }`). The native layer hands the headers over as one string of
// `name: value` lines, split only when first read, so a caller that never looks pays nothing more.

class LastResponse {
  // Private fields: not enumerable, and cheaper to set than defined properties (every result
  // makes one of these).
  #text
  #headers = null

  constructor(status, headersText) {
    this.status = status
    this.#text = headersText ?? ''
  }

  /** The response headers, names in lower case. */
  get headers() {
    if (this.#headers === null) {
      const headers = {}
      for (const line of this.#text.split('\n')) {
        const at = line.indexOf(': ')
        if (at < 0) continue
        const name = line.slice(0, at)
        const value = line.slice(at + 2)
        headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value
      }
      this.#headers = headers
    }
    return this.#headers
  }

  /** The request id the server answered with (`X-Request-Id`), or null. */
  get requestId() { return this.headers['x-request-id'] ?? null }

  /** The answer replays an earlier one of the same idempotency key. */
  get idempotentReplayed() { return (this.headers['idempotent-replayed'] ?? '').toLowerCase() === 'true' }

  /** `{ limit, remaining, reset }` when the answer reports all three, else null. */
  get rateLimit() {
    const h = this.headers
    const n = (name) => (/^\d+$/.test(h[name] ?? '') ? Number(h[name]) : null)
    const [limit, remaining, reset] = [n('ratelimit-limit'), n('ratelimit-remaining'), n('ratelimit-reset')]
    return limit === null || remaining === null || reset === null ? null : { limit, remaining, reset }
  }
}

/** Sets `value.lastResponse` to `meta` (non-enumerable: not part of the value's JSON or equality). */
function attach(value, meta) {
  if (value !== null && typeof value === 'object') {
    Object.defineProperty(value, 'lastResponse', { value: meta, configurable: true })
  }
  return value
}

module.exports = { LastResponse, attach }
