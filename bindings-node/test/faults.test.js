'use strict'
// Exactly-once through injected faults (the Rust SDK's tests/it/faults.rs, in Node).
const test = require('node:test')
const assert = require('node:assert/strict')
const { emulator, twh } = require('./helpers.js')

async function setup(t) {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const item = await client.createItem({ sku: 'F-1', name: 'fault' })
  const location = await client.createLocation({ code: 'F-WH', name: 'fault wh' })
  return { emu, client, item, location }
}

for (const action of ['error_after_commit', 'drop_connection_after_commit']) {
  test(`${action}: the SDK's retry makes exactly one ledger entry`, async (t) => {
    const { emu, client, item, location } = await setup(t)
    const fault = emu.injectFault({ action, method: 'POST', pathPrefix: '/v1/stock-movements', times: 1, status: 500 })
    assert.equal(fault.remaining, 1)
    const movement = await client.createMovement({ type: 'receipt', itemId: item.id, locationId: location.id, quantity: 10 })
    assert.equal(movement.lines[0].quantityAfter, 10)
    const ledger = []
    for await (const m of client.iterMovements({ itemId: item.id })) ledger.push(m)
    assert.equal(ledger.length, 1, 'exactly one ledger entry')
    assert.equal(ledger[0].id, movement.id, 'the retry received the original result')
    const level = await client.getStockLevel(item.id, location.id)
    assert.equal(level.quantity, 10)
    assert.equal(level.version, 1)
    // The fault fired: a second write goes straight through.
    await client.createMovement({ type: 'receipt', itemId: item.id, locationId: location.id, quantity: 1 })
    assert.equal((await client.getStockLevel(item.id, location.id)).quantity, 11)
  })
}

test('a caller idempotency key replays across calls; another body with it is refused', async (t) => {
  const { client, item, location } = await setup(t)
  const body = { type: 'receipt', itemId: item.id, locationId: location.id, quantity: 4 }
  const first = await client.createMovement(body, { idempotencyKey: 'po-77' })
  const again = await client.createMovement(body, { idempotencyKey: 'po-77' })
  assert.equal(again.id, first.id)
  assert.equal((await client.getStockLevel(item.id, location.id)).quantity, 4)
  await assert.rejects(client.createMovement({ ...body, quantity: 5 }, { idempotencyKey: 'po-77' }),
    (e) => e instanceof twh.IdempotencyKeyReusedError && e.status === 422 && e.code === 'idempotency_key_reused')
  assert.equal((await client.listMovements({ itemId: item.id })).data.length, 1)
})
