'use strict'
// ETags: conditional reads, updates with If-Match, and the read-modify-write loop under contention.
const test = require('node:test')
const assert = require('node:assert/strict')
const { emulator, twh } = require('./helpers.js')
const { UPDATE_WITH_ATTEMPTS_MAX } = require('../lib/client.js')

test('two racing updateItemWith loops both get every change in', async (t) => {
  const client = (await emulator(t)).createSandbox()
  const item = await client.createItem({ sku: 'RACE-1', name: 'race', lowStockThreshold: 0 })
  const ROUNDS = 15
  let calls = 0
  const writer = async () => {
    for (let i = 0; i < ROUNDS; i++) {
      await client.updateItemWith(item.id, (current) => { calls++; return { lowStockThreshold: current.lowStockThreshold + 1 } })
    }
  }
  await Promise.all([writer(), writer()])
  const after = await client.getItem(item.id)
  assert.equal(after.lowStockThreshold, 2 * ROUNDS, 'no lost update')
  assert.equal(after.version, item.version + 2 * ROUNDS)
  assert.ok(calls >= 2 * ROUNDS)
  t.diagnostic(`change applied ${calls} times for ${2 * ROUNDS} updates (${calls - 2 * ROUNDS} re-applied after 412)`)
})

test('updateItemWith gives up after a bounded number of 412s, with the 412', async (t) => {
  const client = (await emulator(t)).createSandbox()
  const item = await client.createItem({ sku: 'LOSER', name: 'always stale' })
  let calls = 0
  await assert.rejects(client.updateItemWith(item.id, async (current) => {
    calls++
    // Someone else writes between our read and our write, every time.
    await client.updateItem(item.id, current.etag, { name: `other ${calls}` })
    return { name: 'mine' }
  }), (e) => e instanceof twh.PreconditionFailedError && e.status === 412 && typeof e.currentEtag === 'string')
  assert.equal(calls, UPDATE_WITH_ATTEMPTS_MAX)
  assert.equal(UPDATE_WITH_ATTEMPTS_MAX, 10, "the Rust SDK's bound")
})

test('conditional reads, stale updates, updateLocationWith, archive', async (t) => {
  const client = (await emulator(t)).createSandbox()
  const item = await client.createItem({ sku: 'E-1', name: 'etag' })
  assert.equal(item.etag, '"1"')
  assert.equal(await client.getItemIfChanged(item.id, item.etag), null)
  const renamed = await client.updateItem(item.id, item.etag, { name: 'etag 2' })
  assert.equal(renamed.etag, '"2"')
  assert.equal((await client.getItemIfChanged(item.id, item.etag)).name, 'etag 2')
  await assert.rejects(client.updateItem(item.id, item.etag, { name: 'stale' }),
    (e) => e instanceof twh.PreconditionFailedError && e.code === 'precondition_failed' && e.currentEtag === '"2"')

  const wh = await client.createLocation({ code: 'WH-E', name: 'before' })
  assert.equal(await client.getLocationIfChanged(wh.id, wh.etag), null)
  const moved = await client.updateLocationWith(wh.id, (current) => ({ name: current.name + ' and after' }))
  assert.equal(moved.name, 'before and after')
  assert.equal(moved.version, 2)

  const archived = await client.archiveItem(item.id, renamed.etag)
  assert.equal(archived.status, 'archived')
  const found = []
  for await (const i of client.iterItems({ status: 'archived' })) found.push(i.id)
  assert.deepEqual(found, [item.id])
  await assert.rejects(client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 1 }),
    (e) => e instanceof twh.ConflictError && e.code === 'item_archived')
})
