'use strict'
// Every error class, produced by a real answer (or a real failure) and matched by type, with
// status, code, requestId and retryAfter where the kind has them.
const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { emulator, twh } = require('./helpers.js')

function apiError(Class, status, code, extra = () => true) {
  return (e) => {
    assert.ok(e instanceof Class, `${e?.name}: ${e?.message} is not ${Class.name}`)
    assert.ok(e instanceof twh.TwhError && e instanceof Error)
    assert.equal(e.name, Class.name)
    assert.equal(e.status, status)
    if (code) assert.equal(e.code, code)
    assert.match(e.requestId ?? '', /.+/, 'requestId set')
    assert.ok(e.attempts >= 1)
    assert.ok(extra(e))
    return true
  }
}

async function closedPort() {
  const server = net.createServer()
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const port = server.address().port
  await new Promise((r) => server.close(r))
  return port
}

test('every error class, with status, code, requestId, retryAfter', async (t) => {
  const emu = await emulator(t, { rateLimitPerSecond: 0, freeQuotas: { ledgerLines: 3 } })
  const { client, sandbox } = emu.createSandboxWith()
  const item = await client.createItem({ sku: 'ERR-1', name: 'errors' })
  const wh = await client.createLocation({ code: 'ERR-WH', name: 'errors' })
  const receipt = (quantity) => ({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity })

  await assert.rejects(new twh.Client({ apiKey: 'sk_test_nope', baseUrl: emu.baseUrl }).getSandbox(),
    apiError(twh.AuthenticationError, 401, 'unauthenticated'))
  await assert.rejects(client.withApiKey(sandbox.restrictedKey).createItem({ sku: 'RO', name: 'ro' }),
    apiError(twh.PermissionError, 403, 'forbidden'))
  await assert.rejects(client.getItem('itm_doesnotexist'), apiError(twh.NotFoundError, 404, 'not_found'))
  await assert.rejects(client.createItem({ sku: 'ERR-1', name: 'again' }), apiError(twh.ConflictError, 409, 'sku_taken'))
  await assert.rejects(client.createMovement(receipt(0)),
    apiError(twh.ValidationError, 422, 'validation_failed', (e) => e.errors.some((f) => f.field === 'quantity')))
  await assert.rejects(client.updateItem(item.id, '"9"', { name: 'stale' }),
    apiError(twh.PreconditionFailedError, 412, 'precondition_failed', (e) => e.currentEtag === '"1"'))

  await client.createMovement(receipt(1), { idempotencyKey: 'k-1' })
  await assert.rejects(client.createMovement(receipt(2), { idempotencyKey: 'k-1' }),
    apiError(twh.IdempotencyKeyReusedError, 422, 'idempotency_key_reused'))

  // 428: the SDK always sends If-Match, so the emulator is made to answer 428 by a fault.
  emu.injectFault({ action: 'error_before_commit', status: 428, method: 'PATCH', pathPrefix: '/v1/items', times: 1 })
  await assert.rejects(client.updateItem(item.id, '*', { name: 'x' }), apiError(twh.PreconditionRequiredError, 428))

  // 500 before commit, retried by the SDK (3 retries), then reported with the attempts made.
  emu.injectFault({ action: 'error_before_commit', status: 500, method: 'GET', pathPrefix: '/v1/sandbox', times: 2 })
  const oneRetry = new twh.Client({ apiKey: sandbox.secretKey, baseUrl: emu.baseUrl, maxRetries: 1 })
  await assert.rejects(oneRetry.getSandbox(), apiError(twh.ServerError, 500, null, (e) => e.attempts === 2))
  emu.injectFault({ action: 'error_before_commit', status: 500, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  assert.equal((await oneRetry.getSandbox()).id, sandbox.id, 'one 500 is retried away')

  // An unmapped status.
  emu.injectFault({ action: 'error_before_commit', status: 418, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  await assert.rejects(client.getSandbox(), apiError(twh.ApiError, 418))

  // Quota: 3 ledger lines on this emulator's free plan; 1 used above.
  await client.createMovement(receipt(1))
  await client.createMovement(receipt(1))
  await assert.rejects(client.createMovement(receipt(1)),
    apiError(twh.QuotaExceededError, 429, 'quota_exceeded', (e) => e.retryAfter > 0))

  // Timeout: each attempt waits 1.5 s for an answer that takes 3 s.
  emu.injectFault({ action: 'delay', delayMs: 3000, method: 'GET', pathPrefix: '/v1/sandbox', times: 1 })
  const impatient = new twh.Client({ apiKey: sandbox.secretKey, baseUrl: emu.baseUrl, maxRetries: 0, timeoutMs: 300 })
  await assert.rejects(impatient.getSandbox(), (e) => e instanceof twh.TimeoutError && e.status === null)
  emu.clearFaults()

  const nowhere = new twh.Client({ apiKey: sandbox.secretKey, baseUrl: `http://127.0.0.1:${await closedPort()}`, maxRetries: 0 })
  await assert.rejects(nowhere.getSandbox(), (e) => e instanceof twh.ConnectionError && e.status === null && e.attempts === 1)

  assert.throws(() => new twh.Client({ apiKey: 'sk_test_x', baseUrl: 'not a url' }), twh.ConfigurationError)
  assert.throws(() => new twh.Client({ apiKey: 'sk_test_x', maxRetries: 99 }), twh.ConfigurationError)
  const saved = process.env.TWH_API_KEY
  delete process.env.TWH_API_KEY
  try {
    assert.throws(() => new twh.Client({ baseUrl: emu.baseUrl }), (e) => e instanceof twh.ConfigurationError && /TWH_API_KEY/.test(e.message))
  } finally {
    if (saved !== undefined) process.env.TWH_API_KEY = saved
  }
  await assert.rejects(client.listItems({ limit: 0 }), twh.InvalidRequestError)

  // A body whose signature verifies but that is not an event.
  const secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64')
  const body = '[1, 2, 3]'
  const headers = twh.webhooks.sign(secret, 'msg_1', new Date(), body)
  assert.throws(() => twh.webhooks.verify(body, headers, secret), twh.UnexpectedResponseError)
  assert.throws(() => twh.webhooks.verify(body + ' ', headers, secret), twh.WebhookVerificationError)
})

test('rate limited: 429 rate_limited with retryAfter, after the SDK retried', async (t) => {
  const emu = await emulator(t, { rateLimitPerSecond: 1, rateLimitBurst: 2 })
  const client = emu.createSandbox({ maxRetries: 0 })
  await client.getSandbox()
  await client.getSandbox()
  await assert.rejects(client.getSandbox(), apiError(twh.RateLimitedError, 429, 'rate_limited', (e) => e.retryAfter > 0))
})
