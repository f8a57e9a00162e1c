'use strict'
// Hand-written public entry (CommonJS). The generated napi loader is binding.js.

const errors = require('./lib/errors.js')
const { Client } = require('./lib/client.js')
const { Emulator } = require('./lib/emulator.js')
const { webhooksVerify } = require('./binding.js')

const webhooks = {
  /**
   * Verifies a Standard Webhooks delivery and returns its event.
   * @param {string|Buffer} payload the raw body
   * @param {Record<string,string>} headers webhook-id, webhook-timestamp, webhook-signature
   * @param {string} secret `whsec_…`
   * @param {{toleranceMs?: number}} [options] default 5 minutes
   */
  verify(payload, headers, secret, options = {}) {
    return errors.wrap(() => webhooksVerify(payload, normaliseHeaders(headers), secret, options.toleranceMs))
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
module.exports = { Client, Emulator, webhooks, ...errorClasses }
