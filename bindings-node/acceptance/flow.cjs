// Acceptance (CommonJS): the ledger flow through the installed tarball, in-process emulator.
const assert = require('node:assert/strict')
const { Emulator, PreconditionFailedError } = require('twh')

;(async () => {
  const emu = await Emulator.start()
  try {
    const client = emu.createSandbox()
    const item = await client.createItem({ sku: 'CJS-1', name: 'cjs' })
    const wh = await client.createLocation({ code: 'WH-1', name: 'main' })
    await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 10 })
    const level = await client.getStockLevel(item.id, wh.id)
    const sale = await client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag })
    assert.equal(sale.lines[0].quantityAfter, 7)
    await assert.rejects(client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag }), PreconditionFailedError)
    console.log('cjs: ledger flow ok, level', (await client.getStockLevel(item.id, wh.id)).quantity)
  } finally {
    await emu.stop()
  }
})()
