'use strict'
// Hand-written: hermetic tests with `node:test` (`require('twh/testing')`).
//
// One emulator per test process (node --test runs each file in its own process), started on
// first use; a fresh sandbox per test. Every sandbox has its own clock, so a test that advances
// its sandbox's (`sb.advanceClock(ms)`) changes no other test's time, and `sb.injectFault(spec)`
// arms faults that match its sandbox's requests only. The emulator keeps nothing alive: the
// process ends when its tests do.

const { Emulator } = require('./lib/emulator.js')

let shared = null

/** This process's emulator, started on first use (options apply to that first start only). */
function emulator(options) {
  if (shared === null) {
    shared = Emulator.start(options)
    shared.catch(() => { shared = null })
  }
  return shared
}

/**
 * A fresh sandbox of this process's emulator, for one test: `{ client, sandbox, id, emulator,
 * clock(), advanceClock(ms), injectFault(spec), requests(options) }`, the last four about this
 * sandbox alone. `options` are `createSandbox`'s (`name`, `seed`, `plan`, client settings).
 */
async function sandbox(options) {
  const emu = await emulator()
  const { client, sandbox: details } = emu.createSandboxWith(options)
  const id = details.id
  return {
    client,
    sandbox: details,
    id,
    emulator: emu,
    clock: () => emu.clock({ sandbox: id }),
    advanceClock: (ms) => emu.advanceClock(ms, { sandbox: id }),
    injectFault: (spec) => emu.injectFault({ ...spec, sandbox: id }),
    requests: (query) => emu.requests({ ...query, sandbox: id }),
  }
}

module.exports = { emulator, sandbox }
