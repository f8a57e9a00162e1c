import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as esm from 'twh'
import { Emulator, NotFoundError } from 'twh'

test('ESM import works, and exports exactly what require() gives', async () => {
  const cjs = createRequire(import.meta.url)('twh')
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), Object.keys(cjs).sort())
  for (const key of Object.keys(cjs)) assert.equal(esm[key], cjs[key], key)
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
