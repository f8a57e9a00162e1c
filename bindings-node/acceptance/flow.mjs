// Acceptance (ESM): the ledger flow through the installed tarball, in-process emulator.
import assert from 'node:assert/strict'
import { Emulator, PreconditionFailedError } from 'twh'

const emu = await Emulator.start()
try {
  const client = emu.createSandbox()
  const item = await client.createItem({ sku: 'ESM-1', name: 'esm' })
  const wh = await client.createLocation({ code: 'WH-1', name: 'main' })
  await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 10 })
  const level = await client.getStockLevel(item.id, wh.id)
  const sale = await client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag })
  assert.equal(sale.lines[0].quantityAfter, 7)
  await assert.rejects(client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag }), PreconditionFailedError)
  console.log('esm: ledger flow ok, level', (await client.getStockLevel(item.id, wh.id)).quantity)
} finally {
  await emu.stop()
}
