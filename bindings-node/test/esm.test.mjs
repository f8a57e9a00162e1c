import test from 'node:test'
import assert from 'node:assert/strict'
import { Emulator, NotFoundError } from 'twh'

test('ESM import works', async () => {
  const emu = await Emulator.start()
  try {
    const client = emu.createSandbox()
    const item = await client.createItem({ sku: 'ESM-1', name: 'esm' })
    assert.equal((await client.getItem(item.id)).sku, 'ESM-1')
    await assert.rejects(client.getItem('item_nope'), NotFoundError)
  } finally {
    await emu.stop()
  }
})
