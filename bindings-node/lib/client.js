'use strict'
// Hand-written: the public Client over the native one. Operations delegate to Rust; the
// auto-paging async iterators and `update…With` loops are small JS on top of them.

const { NativeClient } = require('../binding.js')
const { wrap, PreconditionFailedError } = require('./errors.js')

/** Bound on read-modify-write attempts in `updateItemWith` / `updateLocationWith`. */
const UPDATE_WITH_ATTEMPTS_MAX = 5

const passthrough = [
  'getSandbox', 'resetSandbox', 'deleteSandbox',
  'createItem', 'getItem', 'updateItem', 'archiveItem', 'listItems',
  'createLocation', 'getLocation', 'updateLocation', 'archiveLocation', 'listLocations',
  'createMovement', 'createMovementBatch', 'reverseMovement', 'getMovement', 'listMovements',
  'getStockLevel', 'listStockLevels',
  'getEvent', 'listEvents',
]

const native = Symbol('native')

class Client {
  /**
   * @param {{apiKey?: string, baseUrl?: string, timeoutMs?: number, maxRetries?: number, userAgentSuffix?: string}} [options]
   */
  constructor(options = {}) {
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

  get baseUrl() {
    return this[native].baseUrl
  }

  async * _pages(list, query = {}) {
    let cursor = query.cursor
    for (;;) {
      const page = await this[list]({ ...query, cursor })
      yield* page.data
      if (!page.nextCursor) return
      cursor = page.nextCursor
    }
  }

  iterItems(query) { return this._pages('listItems', query) }
  iterLocations(query) { return this._pages('listLocations', query) }
  iterMovements(query) { return this._pages('listMovements', query) }
  iterStockLevels(query) { return this._pages('listStockLevels', query) }
  iterEvents(query) { return this._pages('listEvents', query) }

  async _updateWith(get, update, id, change) {
    for (let attempt = 1; ; attempt++) {
      const current = await this[get](id)
      const patch = await change(current)
      try {
        return await this[update](id, current.etag, patch)
      } catch (e) {
        if (!(e instanceof PreconditionFailedError) || attempt >= UPDATE_WITH_ATTEMPTS_MAX) throw e
      }
    }
  }

  updateItemWith(id, change) { return this._updateWith('getItem', 'updateItem', id, change) }
  updateLocationWith(id, change) { return this._updateWith('getLocation', 'updateLocation', id, change) }
}

for (const name of passthrough) {
  Client.prototype[name] = function (...args) {
    return wrap(() => this[native][name](...args))
  }
}

module.exports = { Client, UPDATE_WITH_ATTEMPTS_MAX }
