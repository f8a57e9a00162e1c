'use strict'
// The ledger through the binding: conditional movements, batches, reversals, as-of reads.
const test = require('node:test')
const assert = require('node:assert/strict')
const { emulator, twh } = require('./helpers.js')

test('conditional, batch, reverse, transfer, as-of; the level is the sum of the ledger', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const item = await client.createItem({ sku: 'M-1', name: 'movements' })
  const a = await client.createLocation({ code: 'M-A', name: 'A' })
  const b = await client.createLocation({ code: 'M-B', name: 'B', kind: 'store' })
  const before = new Date()
  await emu.advanceClock(1000)

  const first = await client.createMovement({ type: 'receipt', itemId: item.id, locationId: a.id, quantity: 100, reference: 'PO-1', metadata: { po_line: 1 } })
  assert.equal(first.etag, '"1"')
  assert.deepEqual(first.metadata, { po_line: 1 }, 'metadata keys are the caller\'s')
  const level = await client.getStockLevel(item.id, a.id)
  assert.equal(await client.getStockLevelIfChanged(item.id, a.id, level.etag), null)

  const sale = await client.createMovement({ type: 'shipment', itemId: item.id, locationId: a.id, quantity: 30 }, { ifMatch: level.etag })
  assert.equal(sale.lines[0].quantityAfter, 70)
  await assert.rejects(client.createMovement({ type: 'shipment', itemId: item.id, locationId: a.id, quantity: 1 }, { ifMatch: level.etag }),
    (e) => e instanceof twh.PreconditionFailedError && e.status === 412)
  assert.equal((await client.getStockLevelIfChanged(item.id, a.id, level.etag)).quantity, 70)

  const transfer = await client.createMovement({ type: 'transfer', itemId: item.id, fromLocationId: a.id, toLocationId: b.id, quantity: 10 })
  assert.deepEqual(transfer.lines.map((l) => l.delta).sort((x, y) => x - y), [-10, 10])

  const batch = await client.createMovementBatch([1, 2, 3].map((q) => ({ type: 'receipt', itemId: item.id, locationId: a.id, quantity: q })))
  assert.equal(batch.length, 3)
  assert.ok(batch[0].sequence < batch[1].sequence && batch[1].sequence < batch[2].sequence)
  // All or nothing: the failing entry is named, nothing of the batch is written.
  const levelBefore = (await client.getStockLevel(item.id, a.id)).quantity
  await assert.rejects(client.createMovementBatch([
    { type: 'receipt', itemId: item.id, locationId: a.id, quantity: 5 },
    { type: 'receipt', itemId: item.id, locationId: a.id, quantity: 0 },
  ]), (e) => e instanceof twh.ValidationError && e.errors.some((f) => f.field.startsWith('movements[1]')))
  assert.equal((await client.getStockLevel(item.id, a.id)).quantity, levelBefore)
  // An empty batch is the server's to refuse (422), like every other invalid body.
  await assert.rejects(client.createMovementBatch([]), (e) => e instanceof twh.ValidationError && e.status === 422)

  const adjustment = await client.createMovement({ type: 'adjustment', itemId: item.id, locationId: a.id, quantity: -5, reason: 'broken' })
  const reversal = await client.reverseMovement(adjustment.id, { reason: 'miscounted' })
  assert.equal(reversal.reverses, adjustment.id)
  assert.equal(reversal.lines[0].delta, 5)
  await assert.rejects(client.reverseMovement(adjustment.id), (e) => e instanceof twh.ConflictError && e.code === 'already_reversed')
  assert.equal((await client.getMovement(reversal.id)).reverses, adjustment.id)

  // The level equals the sum of its ledger lines, and its version their number.
  let sum = 0
  let lines = 0
  for await (const m of client.iterMovements({ itemId: item.id, limit: 3 })) {
    for (const l of m.lines) if (l.locationId === a.id) { sum += l.delta; lines++ }
  }
  const final = await client.getStockLevel(item.id, a.id)
  assert.equal(final.quantity, sum)
  assert.equal(final.version, lines)
  assert.equal(final.quantity, 100 - 30 - 10 + 6)

  const then = await client.getStockLevel(item.id, a.id, { asOf: before })
  assert.equal(then.quantity, 0)
  assert.equal((await client.getStockLevel(item.id, a.id, { asOf: new Date(Date.now() + 3600e3).toISOString() })).quantity, final.quantity)
  await assert.rejects(client.getStockLevel(item.id, a.id, { asOf: 'yesterday' }), twh.InvalidRequestError)

  const shipments = await client.listMovements({ itemId: item.id, type: 'shipment' })
  assert.deepEqual(shipments.data.map((m) => m.id), [sale.id])
  const levels = []
  for await (const l of client.iterStockLevels({ itemId: item.id })) levels.push(l.locationId)
  assert.deepEqual(levels.sort(), [a.id, b.id].sort())
  const events = []
  for await (const e of client.iterEvents({ type: 'stock_movement.created', limit: 2 })) events.push(e)
  assert.equal(events.length, 8)
  assert.equal((await client.getEvent(events[0].id)).data.id, first.id)
})
