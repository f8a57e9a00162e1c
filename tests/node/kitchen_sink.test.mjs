// The kitchen sink (../KITCHEN_SINK.md) through the Node SDK, against the in-process emulator.
// Steps run in order as subtests named like the document's, so a failure names its step. Every
// call goes through the SDK except the one raw PATCH of step 11.
import test from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import * as twh from 'twh'

const { Client, Emulator, webhooks } = twh

/** Error classes raised and matched during the run (step 11). */
const seen = new Set()
async function expectError(promise, Class, check = () => true) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Class, `expected ${Class.name}, got ${e?.name}: ${e?.message}`)
    assert.ok(e instanceof twh.TwhError)
    assert.ok(check(e), `${Class.name} does not match: ${JSON.stringify(e)}`)
    seen.add(Class.name)
    return true
  })
}

/** Polls `check` every 25 ms for at most `timeoutMs`. */
async function waitFor(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Open handles (servers, sockets, timers), not one-off requests in flight such as `CloseReq`. */
const handles = () => JSON.stringify(process.getActiveResourcesInfo().filter((r) => !/Req(uest|Callback)?$/.test(r)).sort())

const receipt = (itemId, locationId, quantity, extra = {}) => ({ type: 'receipt', itemId, locationId, quantity, ...extra })

test('kitchen sink', async (t) => {
  const baselineHandles = handles()
  const emu = await Emulator.start({ keyGraceSeconds: 60 })
  let client, oldClient, sandbox, secretKey
  const items = {}
  const locations = {}
  let flakyStatus = 500
  const requests = []
  let server
  let good, flaky
  let t0

  await t.test('1. emulator and sandbox', async () => {
    ;({ client: oldClient, sandbox } = emu.createSandboxWith({ seed: 'empty', plan: 'free' }))
    assert.equal((await oldClient.getSandbox()).id, sandbox.id)
    const rolled = await oldClient.rollApiKey()
    secretKey = rolled.secretKey
    client = oldClient.withApiKey(secretKey)
    assert.equal((await client.getSandbox()).id, sandbox.id)
    await emu.advanceClock(61_000) // past the grace period of the old key
    await expectError(oldClient.getSandbox(), twh.AuthenticationError,
      (e) => e.status === 401 && e.code === 'unauthenticated' && e.requestId.length > 0)
    assert.equal((await client.getSandbox()).plan, 'free')
  })

  await t.test('2. items', async () => {
    items.one = await client.createItem({ sku: 'SINK-1', name: 'Sink one', lowStockThreshold: 10 })
    items.two = await client.createItem({ sku: 'SINK-2', name: 'Sink two' })
    items.three = await client.createItem({ sku: 'SINK-3', name: 'Sink three' })
    await expectError(client.createItem({ sku: 'SINK-1', name: 'again' }), twh.ConflictError, (e) => e.status === 409 && e.code === 'sku_taken')
    const read = await client.getItem(items.one.id)
    assert.equal(read.etag, items.one.etag)
    assert.equal(await client.getItemIfChanged(items.one.id, read.etag), null, 'unchanged')
    const renamed = await client.updateItem(items.two.id, items.two.etag, { name: 'Sink two, renamed' })
    await expectError(client.updateItem(items.two.id, items.two.etag, { name: 'stale' }), twh.PreconditionFailedError,
      (e) => e.status === 412 && e.currentEtag === renamed.etag)
    const bumped = await client.updateItemWith(items.one.id, (item) => ({ name: `${item.name} (v${item.version + 1})` }))
    assert.equal(bumped.name, 'Sink one (v2)')
    const three = await client.getItem(items.three.id)
    await client.archiveItem(three.id, three.etag)
    const archived = []
    for await (const item of client.iterItems({ status: 'archived' })) archived.push(item.sku)
    assert.deepEqual(archived, ['SINK-3'])
  })

  await t.test('3. locations', async () => {
    locations.a = await client.createLocation({ code: 'WH-A', name: 'Warehouse A' })
    locations.b = await client.createLocation({ code: 'WH-B', name: 'Warehouse B' })
    const renamed = await client.updateLocationWith(locations.b.id, () => ({ name: 'Warehouse B (north)' }))
    assert.equal(renamed.name, 'Warehouse B (north)')
    assert.equal((await client.getLocation(locations.b.id)).name, 'Warehouse B (north)')
  })

  await t.test('4. webhook receivers', async () => {
    server = http.createServer((req, res) => {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        requests.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
        res.writeHead(req.url === '/flaky' ? flakyStatus : 200).end()
      })
    })
    server.keepAliveTimeout = 100
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${server.address().port}`
    good = await client.createWebhookEndpoint({ url: `${base}/good`, eventTypes: ['stock_movement.created'], description: 'good' })
    flaky = await client.createWebhookEndpoint({ url: `${base}/flaky`, eventTypes: ['*'], description: 'flaky', retryScheduleSeconds: [1, 1, 1, 1, 1, 1, 1] })
    assert.deepEqual(flaky.retryScheduleSeconds, [1, 1, 1, 1, 1, 1, 1])
  })

  await t.test('5. exactly once under a fault', async () => {
    emu.injectFault({ action: 'error_after_commit', status: 500, method: 'POST', pathPrefix: '/v1/stock-movements', times: 1, sandbox })
    t0 = await emu.advanceClock(1000)
    await emu.advanceClock(1000)
    const body = receipt(items.one.id, locations.a.id, 100)
    const first = await client.createMovement(body, { idempotencyKey: 'sink-receipt-1' })
    // The request journal shows both attempts of that call: one request id, the second replayed.
    const attempts = (await emu.requests({ sandbox, idempotencyKey: 'sink-receipt-1' })).data
    assert.deepEqual(attempts.map((a) => [a.status, a.idempotentReplayed, a.fault != null]), [[500, false, true], [201, true, false]])
    assert.equal(attempts[0].requestId, attempts[1].requestId)
    const ledger = await client.listMovements({ itemId: items.one.id, locationId: locations.a.id })
    assert.equal(ledger.data.length, 1, 'exactly one movement')
    const level = await client.getStockLevel(items.one.id, locations.a.id)
    assert.equal(level.quantity, 100)
    assert.equal(level.version, 1)
    const again = await client.createMovement(body, { idempotencyKey: 'sink-receipt-1' })
    assert.equal(again.id, first.id)
    await expectError(client.createMovement({ ...body, quantity: 101 }, { idempotencyKey: 'sink-receipt-1' }),
      twh.IdempotencyKeyReusedError, (e) => e.status === 422 && e.code === 'idempotency_key_reused')
  })

  await t.test('6. conditional and refused movements', async () => {
    const [one, a, b] = [items.one.id, locations.a.id, locations.b.id]
    const level = await client.getStockLevel(one, a)
    await client.createMovement({ type: 'shipment', itemId: one, locationId: a, quantity: 30 }, { ifMatch: level.etag })
    await expectError(client.createMovement({ type: 'shipment', itemId: one, locationId: a, quantity: 30 }, { ifMatch: level.etag }),
      twh.PreconditionFailedError, (e) => e.status === 412)
    await expectError(client.createMovement({ type: 'shipment', itemId: one, locationId: a, quantity: 1000 }),
      twh.ConflictError, (e) => e.code === 'insufficient_stock')
    await client.createMovement({ type: 'transfer', itemId: one, fromLocationId: a, toLocationId: b, quantity: 10 })
    const adjustment = await client.createMovement({ type: 'adjustment', itemId: one, locationId: a, quantity: -5, reason: 'damaged' })
    const batch = await client.createMovementBatch([1, 2, 3].map((q) => receipt(one, a, q)))
    assert.equal(batch.length, 3)
    const reversal = await client.reverseMovement(adjustment.id, { reason: 'found them' })
    assert.equal(reversal.reverses, adjustment.id)

    let sum = 0
    for await (const m of client.iterMovements({ itemId: one })) {
      for (const line of m.lines) if (line.locationId === a) sum += line.delta
    }
    const final = await client.getStockLevel(one, a)
    assert.equal(final.quantity, sum)
    assert.equal(final.quantity, 100 - 30 - 10 - 5 + 6 + 5)
    assert.equal((await client.getStockLevel(one, a, { asOf: t0 })).quantity, 0)
  })

  await t.test('7. paging', async () => {
    for (let i = 0; i < 120; i++) await client.createItem({ sku: `PAGE-${String(i).padStart(3, '0')}`, name: `Page item ${i}` })
    const ids = []
    for await (const item of client.iterItems({ limit: 50 })) ids.push(item.id)
    assert.equal(ids.length, 123)
    assert.equal(new Set(ids).size, 123, 'each exactly once')
    const sizes = []
    let page = await client.listItems({ limit: 50 })
    sizes.push(page.data.length)
    while (page.nextCursor) {
      page = await client.listItems({ limit: 50, cursor: page.nextCursor })
      sizes.push(page.data.length)
    }
    assert.deepEqual(sizes, [50, 50, 23])
  })

  await t.test('8. webhooks', async () => {
    const delivered = await waitFor(() => requests.find((r) => r.path === '/good'), 'a delivery to good')
    const event = webhooks.verify(delivered.body, delivered.headers, good.secret)
    assert.equal(event.type, 'stock_movement.created')
    await expectError(Promise.resolve().then(() => webhooks.verify(delivered.body.replace('"receipt"', '"shipment"'), delivered.headers, good.secret)),
      twh.WebhookVerificationError)

    const first = (await client.listWebhookDeliveries({ endpointId: flaky.id, limit: 1 })).data[0]
    const dead = await waitFor(async () => {
      await emu.advanceClock(2000)
      const d = await client.getWebhookDelivery(first.id)
      return d.status === 'dead' && d
    }, "flaky's first delivery to be dead", 60_000)
    assert.equal(dead.attempts.length, 8)
    const exhausted = await client.listEvents({ type: 'webhook_delivery.exhausted' })
    assert.ok(exhausted.data.length >= 1)

    flakyStatus = 200
    await client.replayWebhookDelivery(first.id)
    await waitFor(async () => (await client.getWebhookDelivery(first.id)).status === 'succeeded', 'the replay to succeed')
    const sameId = requests.filter((r) => r.path === '/flaky' && r.headers['webhook-id'] === first.eventId)
    assert.equal(sameId.length, 9, '8 failed attempts and the replay, one webhook-id')

    const ping = await client.testWebhookEndpoint(good.id)
    await waitFor(async () => (await client.getWebhookDelivery(ping.id)).status === 'succeeded', 'the ping')
    const rotated = await client.rotateWebhookSecret(good.id)
    const seenBefore = requests.length
    await client.createMovement(receipt(items.two.id, locations.a.id, 1))
    const after = await waitFor(() => requests.slice(seenBefore).find((r) => r.path === '/good'), 'a delivery after rotation')
    assert.equal(webhooks.verify(after.body, after.headers, rotated.secret).type, 'stock_movement.created')

    // Both endpoints go before step 10's 20,000 ledger lines, which would otherwise be 60,000 deliveries.
    for (const endpoint of [good, flaky]) {
      await client.deleteWebhookEndpoint(endpoint.id, (await client.getWebhookEndpoint(endpoint.id)).etag)
    }
  })

  await t.test('9. reconciliation and jobs', async () => {
    const started = await client.createReconciliation()
    const rec = await waitFor(async () => {
      const r = await client.getReconciliation(started.id)
      return r.status === 'completed' && r
    }, 'the reconciliation')
    assert.equal(rec.discrepancies.length, 0)
    assert.ok(rec.checked > 0)

    const csv = [
      'type,item_id,location_id,quantity,reference',
      `receipt,${items.two.id},${locations.b.id},4,import-1`,
      `receipt,${items.two.id},${locations.b.id},0,import-2`,
      `receipt,${items.two.id},${locations.b.id},6,import-3`,
    ].join('\n') + '\n'
    const job = await client.importMovementsCsv(csv)
    const done = await waitFor(async () => {
      const j = await client.getJob(job.id)
      return !['queued', 'running'].includes(j.status) && j
    }, 'the import job')
    assert.equal(done.status, 'completed_with_errors')
    assert.equal(done.errors.length, 1)
    assert.equal(done.errors[0].line, 3)
    const references = []
    for await (const m of client.iterMovements({ itemId: items.two.id, locationId: locations.b.id })) references.push(m.reference)
    assert.deepEqual(references.sort(), ['import-1', 'import-3'])
  })

  await t.test('10. quota and invoice', async () => {
    const QUOTA = 20_000
    const BATCH = 1000
    // A 429 is retried by default (Retry-After capped at 60 s): this client reports it at once.
    const noRetries = new Client({ apiKey: secretKey, baseUrl: emu.baseUrl, maxRetries: 0 })
    const ledgerLines = async () => (await client.getUsage()).meters.find((m) => m.meter === 'ledger_lines')
    let used = (await ledgerLines()).quantity
    assert.equal((await ledgerLines()).quota, QUOTA)
    let batches = 0
    while (used < QUOTA) {
      const size = Math.min(BATCH, QUOTA - used)
      const movements = Array.from({ length: size }, () => receipt(items.two.id, locations.a.id, 1))
      await client.createMovementBatch(movements)
      used += size
      assert.ok(++batches <= QUOTA / BATCH + 1, 'bounded')
    }
    assert.equal((await ledgerLines()).quantity, QUOTA)
    await expectError(noRetries.createMovement(receipt(items.two.id, locations.a.id, 1)), twh.QuotaExceededError,
      (e) => e.status === 429 && e.code === 'quota_exceeded' && e.retryAfter > 0)

    const pro = await client.updateSubscription('pro')
    assert.equal(pro.plan, 'pro')
    await noRetries.createMovement(receipt(items.two.id, locations.a.id, 1))
    const usage = await ledgerLines()
    assert.equal(usage.quantity, QUOTA + 1)

    const { periodEnd } = await client.getSubscription()
    const now = await emu.advanceClock(0)
    await emu.advanceClock(Date.parse(periodEnd) - Date.parse(now) + 60_000)
    const invoices = await client.listInvoices()
    assert.equal(invoices.data.length, 1)
    const invoice = invoices.data[0]
    assert.equal(invoice.lines.find((l) => l.meter === 'ledger_lines').quantity, usage.quantity)
    assert.deepEqual(await client.getInvoice(invoice.id), invoice)
  })

  await t.test('11. every error class seen', async () => {
    await expectError(client.getItem('itm_unknown'), twh.NotFoundError, (e) => e.status === 404 && e.code === 'not_found')
    await expectError(client.createMovement(receipt(items.one.id, locations.a.id, 0)), twh.ValidationError,
      (e) => [400, 422].includes(e.status) && e.errors.length > 0)
    // Raw: the SDK always sends If-Match, so a PATCH without it is only possible by hand.
    const item = await client.getItem(items.two.id)
    const raw = await rawRequest('PATCH', `${emu.baseUrl}/v1/items/${item.id}`, secretKey, { name: 'no if-match' })
    assert.equal(raw.status, 428)
    assert.equal(JSON.parse(raw.body).code, 'precondition_required')
    // Through the SDK, by type: the emulator is made to answer 428.
    emu.injectFault({ action: 'error_before_commit', status: 428, method: 'PATCH', pathPrefix: '/v1/items', times: 1 })
    await expectError(client.updateItem(item.id, item.etag, { name: 'x' }), twh.PreconditionRequiredError, (e) => e.status === 428)
    const closed = await closedPort()
    await expectError(new Client({ apiKey: secretKey, baseUrl: `http://127.0.0.1:${closed}`, maxRetries: 0 }).getSandbox(),
      twh.ConnectionError, (e) => e.status === null)
    for (const name of ['AuthenticationError', 'NotFoundError', 'ConflictError', 'IdempotencyKeyReusedError',
      'ValidationError', 'PreconditionFailedError', 'PreconditionRequiredError', 'QuotaExceededError', 'ConnectionError']) {
      assert.ok(seen.has(name), `${name} was raised and matched`)
    }
  })

  await t.test('12. call control', async () => {
    const { client, sandbox } = emu.createSandboxWith()
    const quick = client.withOptions({ timeoutMs: 300, maxRetries: 0 })
    emu.injectFault({ action: 'delay', delayMs: 2000, method: 'GET', pathPrefix: '/v1/sandbox', times: 1, sandbox: sandbox.id })
    const started = Date.now()
    await assert.rejects(quick.getSandbox(), (e) => e instanceof twh.TimeoutError && e.attempts === 1)
    assert.ok(Date.now() - started < 1500)
    await new Promise((r) => setTimeout(r, 2100)) // the delayed request ends first
    assert.equal((await client.getSandbox()).id, sandbox.id)

    const hooked = client.withOptions({})
    const requests = []
    const responses = []
    hooked.on('request', (a) => requests.push(a)).on('response', (a) => responses.push(a))
    emu.injectFault({ action: 'error_before_commit', status: 503, method: 'POST', pathPrefix: '/v1/items', times: 2, sandbox: sandbox.id })
    const item = await hooked.createItem({ sku: 'CALL-1', name: 'Called', lowStockThreshold: 7 })
    await new Promise((r) => setTimeout(r, 50)) // the last event may arrive just after the answer
    assert.deepEqual(requests.map((a) => a.attempt), [1, 2, 3])
    assert.equal(new Set(requests.map((a) => a.idempotencyKey)).size, 1)
    assert.deepEqual(responses.map((a) => a.status), [503, 503, 201])

    emu.injectFault({ action: 'error_after_commit', status: 500, method: 'PATCH', pathPrefix: '/v1/items/', times: 1, sandbox: sandbox.id })
    const renamed = await client.updateItem(item.id, item.etag, { name: 'Called again' })
    assert.equal(renamed.version, item.version + 1)
    assert.equal(renamed.lowStockThreshold, 7)
    const cleared = await client.updateItem(item.id, renamed.etag, { lowStockThreshold: null })
    assert.equal(cleared.lowStockThreshold, null)
    const kept = await client.updateItem(item.id, cleared.etag, { name: 'Kept' })
    assert.equal(kept.lowStockThreshold, null)
  })

  await t.test('13. stop', async () => {
    await new Promise((r) => { server.closeAllConnections(); server.close(r) })
    await emu.stop()
    await expectError(Promise.resolve().then(() => emu.createSandbox()), twh.ConfigurationError)
    assert.equal(handles(), baselineHandles, 'no open handles')
  })
})

function rawRequest(method, url, apiKey, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body)
    const req = http.request(url, {
      method,
      agent: false,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

async function closedPort() {
  const probe = net.createServer()
  await new Promise((r) => probe.listen(0, '127.0.0.1', r))
  const { port } = probe.address()
  await new Promise((r) => probe.close(r))
  return port
}
