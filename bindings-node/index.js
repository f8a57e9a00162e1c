'use strict'
// Hand-written public entry (CommonJS). The generated napi loader is binding.js.

const errors = require('./lib/errors.js')
const { Client } = require('./lib/client.js')
const { Emulator } = require('./lib/emulator.js')
const { webhooksVerify, webhooksSign, VERSION } = require('./binding.js')

const webhooks = {
  /**
   * Verifies a Standard Webhooks delivery and returns its event.
   * @param {string|Buffer} payload the raw body
   * @param {Record<string,string>} headers webhook-id, webhook-timestamp, webhook-signature
   * @param {string} secret `whsec_…`
   * @param {{toleranceMs?: number}} [options] default 5 minutes
   */
  verify(payload, headers, secret, options = {}) {
    return JSON.parse(errors.wrap(() => webhooksVerify(payload, normaliseHeaders(headers), secret, options.toleranceMs)))
  },
  /**
   * Signs a delivery as TWH does, for tests of a webhook handler: one `v1,` signature per
   * secret (several during a rotation). Returns the `webhook-id`, `webhook-timestamp` and
   * `webhook-signature` headers.
   * @param {string|string[]} secrets `whsec_…`
   * @param {string} id the event id
   * @param {number|Date} timestamp unix seconds, or a Date
   * @param {string|Buffer} payload the body
   */
  sign(secrets, id, timestamp, payload) {
    const seconds = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp
    return errors.wrap(() => webhooksSign(Array.isArray(secrets) ? secrets : [secrets], id, seconds, payload))
  },
}

function normaliseHeaders(headers) {
  if (headers && typeof headers.entries === 'function' && !Array.isArray(headers)) {
    headers = Object.fromEntries(headers.entries())
  }
  const out = {}
  for (const [k, v] of Object.entries(headers ?? {})) {
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v)
  }
  return out
}

const { fromNative, wrap, ...errorClasses } = errors
module.exports = { Client, Emulator, webhooks, VERSION, ...errorClasses }
