'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const { emulator, twh } = require('./helpers.js')

test('paging over 250 items yields each exactly once, in creation order', async (t) => {
  const client = (await emulator(t)).createSandbox()
  const created = []
  for (let i = 0; i < 250; i++) created.push((await client.createItem({ sku: `P-${String(i).padStart(3, '0')}`, name: `item ${i}` })).id)

  const seen = []
  for await (const item of client.iterItems({ limit: 100 })) seen.push(item.id)
  assert.equal(seen.length, 250)
  assert.equal(new Set(seen).size, 250, 'no item twice')
  assert.deepEqual(seen, created, 'creation order')

  // One-page calls: a cursor until the last page.
  const pages = []
  let page = await client.listItems({ limit: 100 })
  pages.push(page.data.length)
  while (page.nextCursor) {
    page = await client.listItems({ limit: 100, cursor: page.nextCursor })
    pages.push(page.data.length)
  }
  assert.deepEqual(pages, [100, 100, 50])

  // An iterator can start from a cursor, and breaking out of it stops paging.
  const first = await client.listItems({ limit: 50 })
  let rest = 0
  for await (const _ of client.iterItems({ limit: 50, cursor: first.nextCursor })) rest++
  assert.equal(rest, 200)
  let taken = 0
  for await (const _ of client.iterItems({ limit: 10 })) if (++taken === 15) break
  assert.equal(taken, 15)

  await assert.rejects(client.listItems({ cursor: 'not-a-cursor' }),
    (e) => e instanceof twh.ValidationError && e.status === 400 && e.code === 'invalid_cursor')
  await assert.rejects(client.listItems({ limit: 500 }), twh.InvalidRequestError)
  await assert.rejects(client.listItems({ limit: -1 }), twh.InvalidRequestError)
  await assert.rejects(client.listItems({ itemId: 'x' }), /unknown option "itemId"/)
})
