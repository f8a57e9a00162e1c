'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const twh = require('..')

test('ledger flow, faults, errors, iterators against the in-process emulator', async (t) => {
  const emu = await twh.Emulator.start()
  t.after(() => emu.stop())
  assert.match(emu.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  const client = emu.createSandbox()

  const mug = await client.createItem({ sku: 'MUG-BLU', name: 'Mug, blue' })
  const wh = await client.createLocation({ code: 'WH-1', name: 'Main warehouse' })
  assert.ok(mug.id && mug.etag)

  await client.createMovement({ type: 'receipt', itemId: mug.id, locationId: wh.id, quantity: 10 })
  const level = await client.getStockLevel(mug.id, wh.id)
  assert.equal(level.quantity, 10)

  const sale = await client.createMovement(
    { type: 'shipment', itemId: mug.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag })
  assert.equal(sale.lines[0].quantityAfter, 7)

  await assert.rejects(
    client.createMovement({ type: 'shipment', itemId: mug.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag }),
    (e) => e instanceof twh.PreconditionFailedError && e instanceof twh.TwhError && e.status === 412 && typeof e.code === 'string')

  await assert.rejects(client.getItem('item_doesnotexist'),
    (e) => e instanceof twh.NotFoundError && e.status === 404 && typeof e.requestId === 'string' && e.requestId.length > 0)

  await assert.rejects(
    client.createMovement({ type: 'shipment', itemId: mug.id, locationId: wh.id, quantity: 1000 }),
    (e) => e instanceof twh.ConflictError && e.status === 409 && e.code === 'insufficient_stock')

  // A 503 after the commit: the SDK retries with the same Idempotency-Key -> exactly one entry.
  emu.injectFault({ action: 'error_after_commit', status: 503, times: 1, method: 'POST' })
  const before = (await client.listMovements({ itemId: mug.id })).data.length
  await client.createMovement({ type: 'receipt', itemId: mug.id, locationId: wh.id, quantity: 5 })
  const after = (await client.listMovements({ itemId: mug.id })).data.length
  assert.equal(after, before + 1)
  assert.equal((await client.getStockLevel(mug.id, wh.id)).quantity, 12)

  // Async iterators page through everything.
  for (let i = 0; i < 5; i++) await client.createItem({ sku: `SKU-${i}`, name: `Item ${i}` })
  const skus = []
  for await (const item of client.iterItems({ limit: 2 })) skus.push(item.sku)
  assert.equal(skus.length, 6)

  const events = []
  for await (const e of client.iterEvents({ limit: 3 })) events.push(e)
  assert.ok(events.length > 0)

  const now = await emu.advanceClock(60_000)
  assert.ok(!Number.isNaN(Date.parse(now)))
})

test('configuration errors are thrown at construction', () => {
  assert.throws(() => new twh.Client({ apiKey: 'sk_test_x', baseUrl: 'not a url' }), twh.ConfigurationError)
})
