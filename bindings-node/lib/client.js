'use strict'
// Hand-written: the public Client over the native one. Every operation delegates to Rust (the
// SDK's retries, idempotency keys, ETags and typed errors); what is JS here is only what needs
// a JS callback or a JS protocol: the auto-paging async iterators and the `update…With` loops.

const { NativeClient, READ_MODIFY_WRITE_ATTEMPTS_MAX } = require('../binding.js')
const { wrap, PreconditionFailedError, InvalidRequestError } = require('./errors.js')

/**
 * Rounds of read-modify-write in `updateItemWith` / `updateLocationWith` before the last 412 is
 * thrown: the Rust SDK's own bound (`twh::etag::READ_MODIFY_WRITE_ATTEMPTS_MAX`).
 */
const UPDATE_WITH_ATTEMPTS_MAX = READ_MODIFY_WRITE_ATTEMPTS_MAX

/** Pages an async iterator fetches at most, so a server that always answers a cursor cannot loop it forever. */
const ITER_PAGES_MAX = 1_000_000

/** Methods that only forward their arguments to the native client (names are the native ones). */
const PASSTHROUGH = [
  // sandboxes and keys
  'getSandbox', 'resetSandbox', 'deleteSandbox', 'rollApiKey', 'createSandbox',
  // items
  'createItem', 'getItem', 'getItemIfChanged', 'updateItem', 'archiveItem', 'listItems',
  // locations
  'createLocation', 'getLocation', 'getLocationIfChanged', 'updateLocation', 'archiveLocation', 'listLocations',
  // movements
  'createMovement', 'createMovementBatch', 'reverseMovement', 'getMovement', 'listMovements',
  // stock levels
  'getStockLevelIfChanged', 'listStockLevels',
  // events
  'getEvent', 'listEvents',
  // webhook endpoints and deliveries
  'createWebhookEndpoint', 'getWebhookEndpoint', 'updateWebhookEndpoint', 'deleteWebhookEndpoint',
  'rotateWebhookSecret', 'testWebhookEndpoint', 'replayWebhookEndpoint', 'listWebhookEndpoints',
  'getWebhookDelivery', 'replayWebhookDelivery', 'listWebhookDeliveries',
  // billing
  'listPlans', 'getSubscription', 'updateSubscription', 'getUsage', 'exportUsage', 'exportUsageCsv',
  'listInvoices', 'getInvoice', 'getInvoiceCsv',
  // reconciliations and jobs
  'createReconciliation', 'getReconciliation', 'getReconciliationCsv', 'listReconciliations',
  'createJob', 'importMovementsCsv', 'getJob',
]

/**
 * Where each POST takes its options object, and which keys it knows: a typo (`{ ifmatch }`) or
 * an option a call does not have (`createItem(x, { ifMatch })`) throws instead of being ignored.
 */
const POST_OPTIONS_AT = {
  resetSandbox: 0, rollApiKey: 0, createSandbox: 1, createItem: 1, createLocation: 1,
  createMovement: 1, createMovementBatch: 1, reverseMovement: 2, createWebhookEndpoint: 1,
  rotateWebhookSecret: 1, testWebhookEndpoint: 1, replayWebhookEndpoint: 2, replayWebhookDelivery: 1,
  updateSubscription: 1, createReconciliation: 1, createJob: 1, importMovementsCsv: 1,
}
const POST_OPTION_KEYS = { createMovement: ['idempotencyKey', 'ifMatch'] }

function checkPostOptions(name, args) {
  const at = POST_OPTIONS_AT[name]
  if (at === undefined || args[at] == null) return
  const options = args[at]
  if (typeof options !== 'object' || Array.isArray(options)) throw new InvalidRequestError(`${name}: options must be an object`)
  const known = POST_OPTION_KEYS[name] ?? ['idempotencyKey']
  for (const key of Object.keys(options)) {
    if (!known.includes(key) && options[key] !== undefined) {
      throw new InvalidRequestError(`${name}: unknown option ${JSON.stringify(key)} (known: ${known.join(', ')})`)
    }
  }
}

/** `iterX(query)` pages through `listX(query)`. */
const ITERATORS = {
  iterItems: 'listItems',
  iterLocations: 'listLocations',
  iterMovements: 'listMovements',
  iterStockLevels: 'listStockLevels',
  iterEvents: 'listEvents',
  iterWebhookEndpoints: 'listWebhookEndpoints',
  iterWebhookDeliveries: 'listWebhookDeliveries',
  iterInvoices: 'listInvoices',
  iterReconciliations: 'listReconciliations',
}

const native = Symbol('native')

/** Native methods that answer text that is not JSON (CSV); every other answer is JSON text. */
const RAW_TEXT = new Set(['exportUsageCsv', 'getInvoiceCsv', 'getReconciliationCsv'])
const parse = (text) => (typeof text === 'string' ? JSON.parse(text) : text)

/** Turns `Date` values of an options object into RFC 3339 strings. */
function dates(options) {
  if (options == null || typeof options !== 'object' || Array.isArray(options) || options instanceof Date) return options
  const out = {}
  for (const [k, v] of Object.entries(options)) out[k] = v instanceof Date ? v.toISOString() : v
  return out
}

class Client {
  /**
   * @param {{apiKey?: string, baseUrl?: string, timeoutMs?: number, maxRetries?: number, userAgentSuffix?: string}} [options]
   *   `apiKey` defaults to `TWH_API_KEY`, `baseUrl` to `TWH_BASE_URL` (else http://127.0.0.1:4010).
   */
  constructor(options = {}) {
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

  /** The level of an item at a location, now or `{ asOf }` (a Date or an RFC 3339 string). */
  getStockLevel(itemId, locationId, options) {
    return wrap(() => this[native].getStockLevel(itemId, locationId, dates(options))).then(parse)
  }

  async * _pages(list, query = {}) {
    let cursor = query?.cursor
    for (let pages = 0; pages < ITER_PAGES_MAX; pages++) {
      const page = await this[list]({ ...dates(query), cursor })
      yield * page.data
      if (!page.nextCursor) return
      cursor = page.nextCursor
    }
    throw new InvalidRequestError(`${list}: more than ${ITER_PAGES_MAX} pages`)
  }

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

  /**
   * Reads the item, applies `change` to it, writes the patch it returns with If-Match; on 412
   * reads and re-applies, at most UPDATE_WITH_ATTEMPTS_MAX times, then throws the 412.
   */
  updateItemWith(id, change) { return this._updateWith('getItem', 'updateItem', id, change) }
  /** `updateItemWith` for locations. */
  updateLocationWith(id, change) { return this._updateWith('getLocation', 'updateLocation', id, change) }
}

for (const name of PASSTHROUGH) {
  Object.defineProperty(Client.prototype, name, {
    // async: a bad argument rejects the returned Promise rather than throwing at the call.
    value: {
      async [name](...args) {
        checkPostOptions(name, args)
        const answer = await wrap(() => this[native][name](...args.map(dates)))
        return RAW_TEXT.has(name) ? answer : parse(answer)
      },
    }[name],
    writable: true,
    configurable: true,
  })
}

for (const [name, list] of Object.entries(ITERATORS)) {
  Object.defineProperty(Client.prototype, name, {
    value: { [name](query) { return this._pages(list, query) } }[name],
    writable: true,
    configurable: true,
  })
}

module.exports = { Client, UPDATE_WITH_ATTEMPTS_MAX, PASSTHROUGH, ITERATORS }
