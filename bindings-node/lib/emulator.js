'use strict'
// Hand-written: the in-process emulator (SDK.md "The emulator from each language").

const { NativeEmulator } = require('../binding.js')
const { Client } = require('./client.js')
const { wrap } = require('./errors.js')

const native = Symbol('native')

class Emulator {
  /** Starts the whole TWH server in this process on a free 127.0.0.1 port. */
  static async start() {
    const emu = Object.create(Emulator.prototype)
    emu[native] = await wrap(() => NativeEmulator.start())
    return emu
  }

  /** `http://127.0.0.1:<port>` */
  get baseUrl() {
    return this[native].baseUrl
  }

  /** A new empty sandbox and a ready Client using its secret key. */
  createSandbox(options) {
    return Client._fromNative(wrap(() => this[native].createSandbox(options)))
  }

  /** Moves the emulator clock forward by `ms` milliseconds; resolves to the new time (ISO). */
  advanceClock(ms) {
    return wrap(() => this[native].advanceClock(ms))
  }

  /** Arms a fault, e.g. `{ action: 'error_after_commit', status: 503, times: 1, method: 'POST', pathPrefix: '/v1/stock-movements' }`. */
  injectFault(spec) {
    return wrap(() => this[native].injectFault(spec))
  }

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
