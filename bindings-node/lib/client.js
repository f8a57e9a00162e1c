'use strict'
// Hand-written: the public Client. Its operation methods are generated (lib/operations.js, one
// per SDK method of openapi/openapi.json) and all go through lib/call.js to the native dispatch;
// what is here is behaviour only: construction, the `update…With` read-modify-write loops,
// and the CSV import helper (the auto-paging iterators are in lib/call.js).

const { NativeClient, READ_MODIFY_WRITE_ATTEMPTS_MAX, setMapKeys } = require('../binding.js')
const { Operations, MAP_KEYS } = require('./operations.js')
const { native } = require('./call.js')

/** The listeners and logger of a Client. */
const hooks = Symbol('hooks')
const { wrap, PreconditionFailedError, InvalidRequestError } = require('./errors.js')

setMapKeys(MAP_KEYS)

/**
 * Rounds of read-modify-write in `updateItemWith` / `updateLocationWith` before the last 412 is
 * thrown: the Rust SDK's own bound (`twh::etag::READ_MODIFY_WRITE_ATTEMPTS_MAX`).
 */
const UPDATE_WITH_ATTEMPTS_MAX = READ_MODIFY_WRITE_ATTEMPTS_MAX

class Client extends Operations {
  /**
   * @param {import('../index').ClientOptions} [options]
   *   `apiKey` defaults to `TWH_API_KEY`, `baseUrl` to `TWH_BASE_URL` (else http://127.0.0.1:4010).
   */
  constructor(options = {}) {
    super()
    if (options === null || typeof options !== 'object') {
      throw new InvalidRequestError('Client options must be an object')
    }
    const env = typeof process !== 'undefined' ? process.env : {}
    const { logger, ...settings } = options
    if (logger != null && typeof logger.debug !== 'function') {
      throw new InvalidRequestError('logger must have a debug(message) method')
    }
    const resolved = {
      ...settings,
      apiKey: options.apiKey ?? env.TWH_API_KEY,
      baseUrl: options.baseUrl ?? env.TWH_BASE_URL,
    }
    this[native] = wrap(() => NativeClient.create(resolved))
    this[hooks] = { request: [], response: [], logger: logger ?? (env.TWH_LOG === 'debug' ? console : null) }
    if (this[hooks].logger) this._observe()
  }

  /** @internal */
  static _fromNative(nativeClient, from) {
    const client = Object.create(Client.prototype)
    client[native] = nativeClient
    const env = typeof process !== 'undefined' ? process.env : {}
    const logger = from?.[hooks]?.logger ?? (env.TWH_LOG === 'debug' ? console : null)
    client[hooks] = { request: [], response: [], logger }
    if (client[hooks].logger) client._observe()
    return client
  }

  /**
   * Calls `listener` once per attempt of every call of this client: `'request'` before it,
   * `'response'` after it (with `status` and `elapsedMs`). It receives `{ method, url, attempt,
   * requestId, idempotencyKey, status, elapsedMs }`. Answers the client.
   */
  on(event, listener) {
    if (event !== 'request' && event !== 'response') {
      throw new InvalidRequestError(`on: unknown event ${JSON.stringify(event)} (known: request, response)`)
    }
    if (typeof listener !== 'function') throw new InvalidRequestError('on: the listener must be a function')
    this[hooks][event].push(listener)
    this._observe()
    return this
  }

  /** Routes the native client's attempt events to the listeners and the logger (once). */
  _observe() {
    const h = this[hooks]
    if (h.observed) return
    h.observed = true
    this[native] = this[native].withObserver((text) => {
      const { event, ...attempt } = JSON.parse(text)
      if (event === 'response' && h.logger) {
        const path = new URL(attempt.url).pathname
        h.logger.debug(`twh: ${attempt.method} ${path} -> ${attempt.status ?? 'no answer'} ` +
          `(attempt ${attempt.attempt}, ${(attempt.elapsedMs ?? 0).toFixed(1)} ms, request ${attempt.requestId})`)
      }
      for (const listener of h[event]) {
        try {
          listener(attempt)
        } catch (e) {
          // A listener that throws must not break the call (nor the other listeners).
          process.emitWarning(`twh: a '${event}' listener threw: ${e?.stack ?? e}`)
        }
      }
    })
  }

  /** The base URL this client talks to. */
  get baseUrl() {
    return this[native].baseUrl
  }

  /** The same configuration with another API key (after `rollApiKey`, or a restricted key). */
  withApiKey(apiKey) {
    return Client._fromNative(wrap(() => this[native].withApiKey(apiKey)), this)
  }

  /**
   * A client sharing this one's connections and key, differing only in `{ timeoutMs, maxRetries,
   * headers }` (headers added to every request); this client keeps its own settings.
   */
  withOptions(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidRequestError('withOptions: options must be an object')
    }
    for (const key of Object.keys(options)) {
      if (!['timeoutMs', 'maxRetries', 'headers'].includes(key)) {
        throw new InvalidRequestError(`withOptions: unknown option ${JSON.stringify(key)} (known: timeoutMs, maxRetries, headers)`)
      }
    }
    return Client._fromNative(wrap(() => this[native].withOptions(options)), this)
  }

  /** Imports movements from CSV in the background: `createJob` of an `import_movements` job. */
  importMovementsCsv(csv, options) {
    return this.createJob({ type: 'import_movements', format: 'csv', data: csv }, options)
  }

  /**
   * Reads the item, applies `change` to it, writes the patch it returns with If-Match; on 412
   * reads and re-applies, at most UPDATE_WITH_ATTEMPTS_MAX times, then throws the 412.
   */
  updateItemWith(id, change) { return this._updateWith('getItem', 'updateItem', id, change) }
  /** `updateItemWith` for locations. */
  updateLocationWith(id, change) { return this._updateWith('getLocation', 'updateLocation', id, change) }

  async _updateWith(get, update, id, change) {
    if (typeof change !== 'function') throw new InvalidRequestError('the change must be a function')
    for (let attempt = 1; ; attempt++) {
      const current = await this[get](id)
      const patch = await change(current)
      try {
        return await this[update](id, current.etag, patch)
      } catch (e) {
        if (!(e instanceof PreconditionFailedError) || attempt >= UPDATE_WITH_ATTEMPTS_MAX) throw e
        // Full jitter under 2^attempt ms (at most 64 ms), as the Rust SDK: writers that retry at
        // once can lose to each other in lockstep until the bound; a random pause breaks the tie.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** Math.min(attempt, 6)))
      }
    }
  }
}

module.exports = { Client, UPDATE_WITH_ATTEMPTS_MAX }
