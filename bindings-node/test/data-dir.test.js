'use strict'
// Emulator.start({ dataDir }): the state outlives the emulator, and one directory has one owner.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const twh = require('..')

test('the state survives a restart on the same dataDir; a second emulator on it is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twh-data-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))

  const first = await twh.Emulator.start({ dataDir: dir })
  const { client, sandbox } = first.createSandboxWith({})
  const item = await client.createItem({ sku: 'DUR-1', name: 'Durable' })
  const location = await client.createLocation({ code: 'DUR-WH', name: 'Durable warehouse' })
  await client.createMovement(
    { type: 'receipt', itemId: item.id, locationId: location.id, quantity: 7 },
    { idempotencyKey: 'dur-receipt-1' },
  )
  await assert.rejects(twh.Emulator.start({ dataDir: dir }), (e) => e instanceof twh.TwhError && /twh\.lock/.test(e.message))
  await first.stop()

  const second = await twh.Emulator.start({ dataDir: dir })
  t.after(() => second.stop())
  const again = new twh.Client({ apiKey: sandbox.secretKey, baseUrl: second.baseUrl })
  const level = await again.getStockLevel(item.id, location.id)
  assert.deepEqual([level.quantity, level.version], [7, 1])
  assert.equal((await again.getItem(item.id)).sku, 'DUR-1')
  // The idempotency record came back too: the same key replays, adding nothing.
  await again.createMovement(
    { type: 'receipt', itemId: item.id, locationId: location.id, quantity: 7 },
    { idempotencyKey: 'dur-receipt-1' },
  )
  const ledger = []
  for await (const m of again.iterMovements({ itemId: item.id })) ledger.push(m)
  assert.equal(ledger.length, 1)
})

test('dataDir must not be empty', async () => {
  await assert.rejects(twh.Emulator.start({ dataDir: '' }), twh.InvalidRequestError)
})
