'use strict'
// Hand-written: the public Client. Its operation methods are generated (lib/operations.js, one
// per SDK method of openapi/openapi.json) and all go through lib/call.js to the native dispatch;
// what is here is behaviour only: construction, the `update…With` read-modify-write loops,
// and the CSV import helper (the auto-paging iterators are in lib/call.js).

const { NativeClient, READ_MODIFY_WRITE_ATTEMPTS_MAX, setMapKeys } = require('../binding.js')
const { Operations, MAP_KEYS } = require('./operations.js')
const { native } = require('./call.js')
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
    const resolved = {
      ...options,
      apiKey: options.apiKey ?? env.TWH_API_KEY,
      baseUrl: options.baseUrl ?? env.TWH_BASE_URL,
    }
    this[native] = wrap(() => NativeClient.create(resolved))
  }

  /** @internal */
  static _fromNative(nativeClient) {
    const client = Object.create(Client.prototype)
    client[native] = nativeClient
    return client
  }

  /** The base URL this client talks to. */
  get baseUrl() {
    return this[native].baseUrl
  }

  /** The same configuration with another API key (after `rollApiKey`, or a restricted key). */
  withApiKey(apiKey) {
    return Client._fromNative(wrap(() => this[native].withApiKey(apiKey)))
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
