'use strict'
// `twh/testing` (issue 20 item 5): one emulator per test process, a fresh sandbox per test with
// its own clock. The first two tests are the acceptance pair (node:test runs them in order): the
// first advances its sandbox's clock, the second's time is untouched.
const test = require('node:test')
const assert = require('node:assert/strict')
const { sandbox, emulator } = require('twh/testing')

const TWO_DAYS_MS = 2 * 24 * 3600 * 1000

async function assertUntouched(sb) {
  const emulatorNow = new Date((await sb.emulator.clock()).now)
  const mine = new Date((await sb.clock()).now)
  assert.ok(Math.abs(mine - emulatorNow) < 60_000, `${mine} is the emulator's ${emulatorNow}`)
  const item = await sb.client.createItem({ sku: 'UNTOUCHED', name: 'u' })
  assert.ok(Math.abs(new Date(item.createdAt) - Date.now()) < 60_000, item.createdAt)
}

test('a: advances its own sandbox clock', async () => {
  const sb = await sandbox()
  const before = new Date((await sb.clock()).now)
  const after = new Date(await sb.advanceClock(TWO_DAYS_MS))
  assert.ok(after - before >= TWO_DAYS_MS)
  const item = await sb.client.createItem({ sku: 'AHEAD', name: 'a' })
  assert.ok(new Date(item.createdAt) >= after, `${item.createdAt} is the sandbox's time`)
})

test('b: sees its own time only', async () => {
  await assertUntouched(await sandbox())
})

test('one emulator per process; faults and journal scoped to the sandbox', async () => {
  const [one, two] = [await sandbox(), await sandbox()]
  assert.equal(one.emulator, two.emulator)
  assert.equal(one.emulator, await emulator())
  assert.notEqual(one.id, two.id)
  await one.advanceClock(TWO_DAYS_MS)
  await assertUntouched(two)

  one.injectFault({ action: 'error_before_commit', pathPrefix: '/v1/plans', times: 1 })
  await two.client.withOptions({ maxRetries: 0 }).listPlans() // not two's fault
  await assert.rejects(one.client.withOptions({ maxRetries: 0 }).listPlans())
  const mine = (await one.requests({ pathPrefix: '/v1/plans' })).data
  assert.deepEqual(mine.map((e) => [e.sandboxId, e.status]), [[one.id, 500]])
})
