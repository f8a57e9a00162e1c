'use strict'
// Hand-written: the emulator handle (docs/guide/emulator.md): one started in
// this process (`Emulator.start`) or one another process serves (`Emulator.connect`). Every
// method talks HTTP to the emulator's control plane through the Rust SDK's handle, so both
// behave the same; `createSandbox`, `injectFault` and `clearFaults` stay synchronous (they wait
// for the emulator's answer, milliseconds, on the calling thread), the rest answer Promises.

const { NativeEmulator } = require('../binding.js')
const { Client } = require('./client.js')
const { wrap, InvalidRequestError } = require('./errors.js')

const native = Symbol('native')

/** Which sandbox a call is about: its id (`sbx_…`), its details (`{ id }`), or a Client of it. */
async function sandboxId(sandbox) {
  if (sandbox == null) return undefined
  if (typeof sandbox === 'string') return sandbox
  if (sandbox instanceof Client) return (await sandbox.getSandbox()).id
  if (typeof sandbox === 'object' && typeof sandbox.id === 'string') return sandbox.id
  throw new InvalidRequestError('sandbox must be an id, a sandbox ({ id }) or a Client')
}

/** `sandboxId` for the synchronous methods: an id or a sandbox's details (no Client). */
function sandboxIdNow(sandbox) {
  if (sandbox == null) return undefined
  if (typeof sandbox === 'string') return sandbox
  if (!(sandbox instanceof Client) && typeof sandbox === 'object' && typeof sandbox.id === 'string') return sandbox.id
  throw new InvalidRequestError('sandbox must be an id or a sandbox ({ id }) here')
}

function object(value, what) {
  if (value != null && (typeof value !== 'object' || Array.isArray(value))) {
    throw new InvalidRequestError(`${what} must be an object`)
  }
  return value ?? {}
}

/** Pages `requestsIter` fetches at most, so an emulator that always answers a cursor cannot loop it forever. */
const ITER_PAGES_MAX = 1_000_000

/** Keys of `createSandbox` options that describe the sandbox; the others configure its client. */
const SANDBOX_KEYS = ['name', 'seed', 'plan']

class Emulator {
  /**
   * Starts the whole TWH server in this process on 127.0.0.1 (a free port unless `port`).
   * @param {import('../index').EmulatorOptions} [options]
   */
  static async start(options) {
    const emu = Object.create(Emulator.prototype)
    if (options != null && (typeof options !== 'object' || Array.isArray(options))) {
      throw new InvalidRequestError('Emulator options must be an object')
    }
    emu[native] = await wrap(() => NativeEmulator.start(JSON.stringify(options ?? {})))
    return emu
  }

  /**
   * The handle of an emulator another process serves (`twh-emulator serve`) at `baseUrl`,
   * sending `adminToken` (its `--admin-token`) if given. Checks that an emulator answers there
   * and accepts the token. Its `stop()` stops nothing: it only closes the handle.
   * @param {string} baseUrl
   * @param {{ adminToken?: string }} [options]
   */
  static async connect(baseUrl, options) {
    if (typeof baseUrl !== 'string') throw new InvalidRequestError('Emulator.connect takes the base URL')
    const { adminToken } = object(options, 'Emulator.connect options')
    const emu = Object.create(Emulator.prototype)
    emu[native] = await wrap(() => NativeEmulator.connect(baseUrl, adminToken ?? null))
    return emu
  }

  /** Whether this handle was made by `Emulator.connect` (the server runs elsewhere). */
  get connected() {
    return this[native].connected
  }

  /** `http://127.0.0.1:<port>` */
  get baseUrl() {
    return this[native].baseUrl
  }

  /**
   * A new sandbox (`{ name?, seed?: 'empty'|'demo', plan?: 'free'|'pro' }`, default empty and
   * free) and its details with both keys, plus a ready Client using its secret key (the other
   * options, `{ timeoutMs?, maxRetries?, userAgentSuffix? }`, configure that client).
   */
  createSandboxWith(options = {}) {
    if (options === null || typeof options !== 'object') throw new InvalidRequestError('createSandbox options must be an object')
    const request = {}
    const clientOptions = {}
    for (const [k, v] of Object.entries(options)) {
      if (SANDBOX_KEYS.includes(k)) request[k] = v
      else clientOptions[k] = v
    }
    if ('apiKey' in clientOptions || 'baseUrl' in clientOptions) {
      throw new InvalidRequestError('createSandbox sets apiKey and baseUrl itself')
    }
    const sandbox = JSON.parse(wrap(() => this[native].createSandbox(JSON.stringify(request))))
    const client = new Client({ ...clientOptions, apiKey: sandbox.secretKey, baseUrl: this.baseUrl })
    return { client, sandbox }
  }

  /** A new sandbox and a ready Client using its secret key (options as `createSandboxWith`). */
  createSandbox(options) {
    return this.createSandboxWith(options).client
  }

  /** The emulator clock, or `{ sandbox }`'s own: `{ now, offsetSeconds }`. */
  async clock(options) {
    const id = await sandboxId(object(options, 'clock options').sandbox)
    return JSON.parse(await wrap(() => this[native].clock(id ?? null)))
  }

  /**
   * Moves the clock forward by `ms` milliseconds, firing what became due; resolves to the new
   * time (ISO). With `{ sandbox }` only that sandbox's clock moves (no other sandbox sees it);
   * without, the emulator clock and so every sandbox's.
   */
  async advanceClock(ms, options) {
    const id = await sandboxId(object(options, 'advanceClock options').sandbox)
    return wrap(() => this[native].advanceClock(ms, id ?? null))
  }

  /**
   * Arms a fault, e.g. `{ action: 'error_after_commit', status: 503, times: 1, method: 'POST',
   * pathPrefix: '/v1/stock-movements' }`; with `sandbox` (an id or `{ id }`), only requests
   * authenticated to that sandbox match.
   */
  injectFault(spec) {
    const { sandbox, ...rest } = object(spec, 'injectFault spec')
    const id = sandboxIdNow(sandbox)
    const body = id === undefined ? rest : { ...rest, sandboxId: id }
    return JSON.parse(wrap(() => this[native].injectFault(JSON.stringify(body))))
  }

  /** The armed faults, with the times each has left. */
  async faults() {
    return JSON.parse(await wrap(() => this[native].faults()))
  }

  /** Disarms every fault. */
  clearFaults() {
    return wrap(() => this[native].clearFaults())
  }

  /**
   * What the built-in webhook sink `name` received, oldest first (`[{ receivedAt, headers,
   * body }]`): point an endpoint at `${emu.baseUrl}/_emulator/sink/${name}`.
   */
  async sink(name) {
    return JSON.parse(await wrap(() => this[native].sink(name)))
  }

  /** Forgets what sink `name` received. */
  clearSink(name) {
    return wrap(() => this[native].clearSink(name))
  }

  /**
   * One page of the request journal, oldest first: `{ data, nextCursor }`. Filters: `sandbox`
   * (an id, `{ id }` or a Client), `method`, `pathPrefix`, `status`, `requestId`,
   * `idempotencyKey`; and `limit`, `cursor`.
   */
  async requests(options) {
    const { sandbox, ...query } = object(options, 'requests options')
    const id = await sandboxId(sandbox)
    if (id !== undefined) query.sandboxId = id
    return JSON.parse(await wrap(() => this[native].requests(JSON.stringify(query))))
  }

  /** Every entry of `requests(options)`, page after page, as an async iterator. */
  async * requestsIter(options) {
    const { sandbox, ...rest } = object(options, 'requestsIter options')
    const id = await sandboxId(sandbox)
    let cursor = rest.cursor
    for (let n = 0; n < ITER_PAGES_MAX; n++) {
      const page = await this.requests({ ...rest, sandbox: id, cursor })
      yield * page.data
      if (!page.nextCursor) return
      if (page.nextCursor === cursor) throw new InvalidRequestError(`requestsIter: the cursor ${cursor} came back`)
      cursor = page.nextCursor
    }
    throw new InvalidRequestError(`requestsIter: more than ${ITER_PAGES_MAX} pages`)
  }

  /** One journal entry by its id. */
  async request(id) {
    return JSON.parse(await wrap(() => this[native].request(id)))
  }

  /** Empties the request journal. */
  clearRequests() {
    return wrap(() => this[native].clearRequests())
  }

  /**
   * Creates the sandboxes of a fixtures document (`{ sandboxes: [{ name, plan?, secretKey?,
   * restrictedKey?, items, locations, movements, webhookEndpoints }] }`; the snake_case file
   * `twh-emulator serve --fixtures FILE` reads is taken as it is), all or nothing; resolves to
   * `[{ client, sandbox }]` (the sandbox with both keys) in the document's order.
   */
  async loadFixtures(document) {
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      throw new InvalidRequestError('loadFixtures takes the fixtures document (an object)')
    }
    const sandboxes = JSON.parse(await wrap(() => this[native].loadFixtures(JSON.stringify(document))))
    return sandboxes.map((sandbox) => ({ client: new Client({ apiKey: sandbox.secretKey, baseUrl: this.baseUrl }), sandbox }))
  }

  /**
   * Stops serving; idempotent. Nothing of the emulator keeps the process alive afterwards. A
   * connected handle stops nothing: it is only closed.
   */
  stop() {
    return wrap(() => this[native].stop())
  }

  async [Symbol.asyncDispose]() {
    await this.stop()
  }
}

module.exports = { Emulator }
