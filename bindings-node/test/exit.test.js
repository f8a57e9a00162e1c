'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')

test('no open handles keep the process alive after stop(), even with webhooks in flight', () => {
  const script = `const { Emulator, ConfigurationError } = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      void process.stdout; void process.stderr // open the stdio pipes first
      const open = () => JSON.stringify(process.getActiveResourcesInfo().filter((r) => !/Req(uest|Callback)?$/.test(r)).sort())
      const baseline = open()
      const e = await Emulator.start(); const c = e.createSandbox();
      await c.createWebhookEndpoint({ url: e.baseUrl + '/_emulator/sink/x', eventTypes: ['*'] })
      const i = await c.createItem({ sku: 'X', name: 'x' })
      const l = await c.createLocation({ code: 'L', name: 'l' })
      await c.createMovement({ type: 'receipt', itemId: i.id, locationId: l.id, quantity: 1 })
      await e.stop(); await e.stop()
      try { e.createSandbox(); console.log('created after stop') } catch (err) { console.log(err instanceof ConfigurationError ? 'refused' : err) }
      const handles = open()
      console.log(handles === baseline ? 'stopped with no new handles' : 'left handles: ' + handles + ' vs ' + baseline)
    })()`
  const run = spawnSync(process.execPath, ['-e', script], { timeout: 20_000, encoding: 'utf8' })
  assert.equal(run.signal, null, 'the process had to be killed: something kept it alive')
  assert.equal(run.status, 0, run.stderr)
  assert.match(run.stdout, /refused/)
  assert.match(run.stdout, /stopped with no new handles/)
})
