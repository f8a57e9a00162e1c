'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')

test('no open handles keep the process alive after stop()', () => {
  const script = `const { Emulator } = require(${JSON.stringify(require.resolve('..'))});
    (async () => { const e = await Emulator.start(); const c = e.createSandbox();
      await c.createItem({ sku: 'X', name: 'x' }); await e.stop(); console.log('stopped') })()`
  const run = spawnSync(process.execPath, ['-e', script], { timeout: 20_000, encoding: 'utf8' })
  assert.equal(run.signal, null, 'the process had to be killed: something kept it alive')
  assert.equal(run.status, 0, run.stderr)
  assert.match(run.stdout, /stopped/)
})
