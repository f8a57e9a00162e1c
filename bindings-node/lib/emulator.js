'use strict'
// Hand-written: the in-process emulator (docs/guide/testing-in-ci.md).

const { NativeEmulator } = require('../binding.js')
const { Client } = require('./client.js')
const { wrap, InvalidRequestError } = require('./errors.js')

const native = Symbol('native')

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

  /** Moves the emulator clock forward by `ms` milliseconds, firing what became due; resolves to the new time (ISO). */
  advanceClock(ms) {
    return wrap(() => this[native].advanceClock(ms))
  }

  /** Arms a fault, e.g. `{ action: 'error_after_commit', status: 503, times: 1, method: 'POST', pathPrefix: '/v1/stock-movements' }`. */
  injectFault(spec) {
    return JSON.parse(wrap(() => this[native].injectFault(JSON.stringify(spec ?? null))))
  }

  /** Disarms every fault. */
  clearFaults() {
    return wrap(() => this[native].clearFaults())
  }

  /** Stops serving; idempotent. Nothing of the emulator keeps the process alive afterwards. */
  stop() {
    return wrap(() => this[native].stop())
  }

  async [Symbol.asyncDispose]() {
    await this.stop()
  }
}

module.exports = { Emulator }
