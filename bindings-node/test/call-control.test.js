'use strict'
// Per-call control (SDK.md "Per-call control"): withOptions, lastResponse on results and
// errors, the problem's detail as `message`, and a long Retry-After raised at once.
const test = require('node:test')
const assert = require('node:assert/strict')
const twh = require('..')
const { emulator } = require('./helpers.js')

test('withOptions times out one client; the original keeps its settings', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const quick = client.withOptions({ timeoutMs: 300, maxRetries: 0 })
  emu.injectFault({ action: 'delay', delayMs: 2000, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  const started = Date.now()
  await assert.rejects(quick.getSandbox(), (e) => e instanceof twh.TimeoutError && e.attempts === 1)
  const took = Date.now() - started
  assert.ok(took >= 250 && took < 1500, `${took} ms`)
  emu.injectFault({ action: 'delay', delayMs: 2000, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  await client.getSandbox() // waits the delay out
  assert.throws(() => client.withOptions({ maxRetries: 11 }), twh.ConfigurationError)
  assert.throws(() => client.withOptions({ timeout: 1 }), twh.InvalidRequestError)
})

test('results and errors carry lastResponse; message is the detail', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const item = await client.createItem({ sku: 'META-1', name: 'Mug' }, { idempotencyKey: 'meta-1' })
  const r = item.lastResponse
  assert.equal(r.status, 201)
  assert.match(r.requestId, /^req_/)
  assert.equal(r.headers.etag, item.etag)
  assert.ok(r.rateLimit && r.rateLimit.remaining < r.rateLimit.limit, JSON.stringify(r.rateLimit))
  assert.equal(r.idempotentReplayed, false)
  assert.ok(!Object.keys(item).includes('lastResponse'), 'not enumerable')
  const again = await client.createItem({ sku: 'META-1', name: 'Mug' }, { idempotencyKey: 'meta-1' })
  assert.equal(again.lastResponse.idempotentReplayed, true)
  const page = await client.listItems()
  assert.equal(page.lastResponse.status, 200)
  const changed = await client.updateItemWith(item.id, () => ({ name: 'Renamed' }))
  assert.equal(changed.lastResponse.status, 200, 'a read-modify-write carries its write\'s answer')
  assert.equal(changed.lastResponse.headers.etag, changed.etag)

  const e = await client.getItem('itm_missing').catch((x) => x)
  assert.ok(e instanceof twh.NotFoundError)
  assert.equal(e.lastResponse.status, 404)
  assert.equal(e.lastResponse.requestId, e.requestId)
  assert.ok(e.lastResponse.rateLimit)
  assert.ok(e.message && !e.message.includes('404'), e.message)
})

test('a Retry-After of days raises at once with retryAfter', async (t) => {
  const emu = await emulator(t, { freeQuotas: { apiRequests: 1 } })
  const client = emu.createSandbox()
  await client.getSandbox()
  const started = Date.now()
  const e = await client.getSandbox().catch((x) => x)
  assert.ok(e instanceof twh.QuotaExceededError, String(e))
  assert.ok(Date.now() - started < 1000)
  assert.ok(e.retryAfter > 60, String(e.retryAfter))
  assert.equal(e.attempts, 1)
})

test('listeners and the logger see every attempt, never the key', async (t) => {
  const emu = await emulator(t)
  const base = emu.createSandbox()
  const lines = []
  const client = base.withOptions({})
  const requests = []
  const responses = []
  client.on('request', (a) => requests.push(a)).on('response', (a) => responses.push(a))
  emu.injectFault({ action: 'error_before_commit', status: 503, method: 'POST', pathPrefix: '/v1/items', times: 2 })
  await client.createItem({ sku: 'HOOK-1', name: 'Mug' })
  await new Promise((r) => setTimeout(r, 50)) // the last event may arrive just after the answer
  assert.deepEqual(requests.map((a) => a.attempt), [1, 2, 3])
  assert.equal(new Set(requests.map((a) => a.idempotencyKey)).size, 1)
  assert.ok(requests[0].idempotencyKey)
  assert.deepEqual(responses.map((a) => a.status), [503, 503, 201])
  assert.ok(responses.every((a) => a.elapsedMs !== null && a.method === 'POST'))

  const { sandbox } = emu.createSandboxWith()
  const viaLogger = new twh.Client({ apiKey: sandbox.secretKey, baseUrl: emu.baseUrl, logger: { debug: (l) => lines.push(l) } })
  emu.injectFault({ action: 'error_before_commit', status: 503, method: 'POST', pathPrefix: '/v1/items', times: 1 })
  await viaLogger.createItem({ sku: 'LOG-1', name: 'Mug' })
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(lines.length, 2, lines.join('\n'))
  assert.match(lines[0], /^twh: POST \/v1\/items -> 503 \(attempt 1, [\d.]+ ms, request req_/)
  assert.match(lines[1], /-> 201 \(attempt 2/)
  assert.ok(!lines.some((l) => l.includes('sk_test_')))
})

test('a per-call signal rejects with AbortError at once', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  emu.injectFault({ action: 'delay', delayMs: 2000, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  const started = Date.now()
  await assert.rejects(client.getSandbox({ signal: controller.signal }), (e) => e.name === 'AbortError')
  assert.ok(Date.now() - started < 500)
  await assert.rejects(client.getSandbox({ signal: 'no' }), twh.InvalidRequestError)
})

test('an aborted call is dropped natively: a delayed create is never made', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  emu.injectFault({ action: 'delay', delayMs: 2000, method: 'POST', pathPrefix: '/v1/items', times: 1 })
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  await assert.rejects(
    client.createItem({ sku: 'ABORT-1', name: 'Mug' }, { signal: controller.signal }),
    (e) => e.name === 'AbortError',
  )
  // Had the native call kept running, the server would have created the item after its 2 s delay.
  await new Promise((r) => setTimeout(r, 2500))
  const page = await client.listItems({ sku: 'ABORT-1' })
  assert.deepEqual(page.data, [], 'the aborted create was not made')
  // A signal that never aborts changes nothing, and an already-aborted one sends nothing.
  const made = await client.createItem({ sku: 'ABORT-2', name: 'Mug' }, { signal: new AbortController().signal })
  assert.equal(made.sku, 'ABORT-2')
  await assert.rejects(client.createItem({ sku: 'ABORT-3', name: 'Mug' }, { signal: AbortSignal.abort() }), (e) => e.name === 'AbortError')
  assert.deepEqual((await client.listItems({ sku: 'ABORT-3' })).data, [])
})

test('null clears a field; undefined or omitted leaves it', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const item = await client.createItem({ sku: 'CLR-1', name: 'Mug', lowStockThreshold: 5 })
  const cleared = await client.updateItem(item.id, item.etag, { lowStockThreshold: null })
  assert.equal(cleared.lowStockThreshold ?? null, null)
  const set = await client.updateItem(cleared.id, cleared.etag, { lowStockThreshold: 7 })
  const left = await client.updateItem(set.id, set.etag, { name: 'Mug 2', lowStockThreshold: undefined })
  assert.equal(left.lowStockThreshold, 7)
  assert.equal(left.name, 'Mug 2')
})
