'use strict'
// Webhook verification interoperating both ways with the `standardwebhooks` reference library
// (pinned in package.json), during a secret rotation too, and on real deliveries to a node:http
// receiver; plus the endpoint and delivery API (update/delete with ETags, test, dead → replay).
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Webhook } = require('standardwebhooks')
const { emulator, receiver, waitFor, twh } = require('./helpers.js')
const { webhooks, WebhookVerificationError } = twh

const newSecret = () => 'whsec_' + crypto.randomBytes(32).toString('base64')
const event = (id) => JSON.stringify({ id, type: 'item.created', created_at: new Date().toISOString(), data: { id: 'itm_1' } })

test('what standardwebhooks signs, webhooks.verify accepts (and rejects when changed)', () => {
  const secret = newSecret()
  const payload = event('evt_sw')
  const now = new Date()
  const signature = new Webhook(secret).sign('evt_sw', now, payload)
  const headers = { 'Webhook-Id': 'evt_sw', 'Webhook-Timestamp': String(Math.floor(now / 1000)), 'Webhook-Signature': signature }
  assert.equal(webhooks.verify(payload, headers, secret).id, 'evt_sw')
  assert.equal(webhooks.verify(Buffer.from(payload), new Headers(headers), secret).type, 'item.created')
  assert.throws(() => webhooks.verify(payload.replace('itm_1', 'itm_2'), headers, secret), WebhookVerificationError)
  assert.throws(() => webhooks.verify(payload, headers, newSecret()), WebhookVerificationError)
  const old = String(Math.floor(now / 1000) - 3600)
  const oldSig = new Webhook(secret).sign('evt_sw', new Date(now - 3600e3), payload)
  assert.throws(() => webhooks.verify(payload, { ...headers, 'Webhook-Timestamp': old, 'Webhook-Signature': oldSig }, secret), WebhookVerificationError)
  assert.equal(webhooks.verify(payload, { ...headers, 'Webhook-Timestamp': old, 'Webhook-Signature': oldSig }, secret, { toleranceMs: 7200e3 }).id, 'evt_sw')
  assert.throws(() => webhooks.verify(payload, { 'webhook-id': 'evt_sw' }, secret), WebhookVerificationError)
})

test('what webhooks.sign signs, standardwebhooks verifies; both secrets during a rotation', () => {
  const [oldSecret, newSecret_] = [newSecret(), newSecret()]
  const payload = event('evt_twh')
  const single = webhooks.sign(oldSecret, 'evt_twh', new Date(), payload)
  assert.deepEqual(new Webhook(oldSecret).verify(payload, single), JSON.parse(payload))
  assert.throws(() => new Webhook(newSecret_).verify(payload, single))

  const rotating = webhooks.sign([oldSecret, newSecret_], 'evt_twh', Math.floor(Date.now() / 1000), payload)
  assert.equal(rotating['webhook-signature'].split(' ').length, 2)
  for (const secret of [oldSecret, newSecret_]) {
    assert.deepEqual(new Webhook(secret).verify(payload, rotating), JSON.parse(payload))
    assert.equal(webhooks.verify(payload, rotating, secret).id, 'evt_twh')
  }
  assert.throws(() => new Webhook(newSecret()).verify(payload, rotating))
  assert.throws(() => webhooks.verify(payload, rotating, newSecret()), WebhookVerificationError)
  assert.throws(() => webhooks.sign([], 'x', 0, payload), twh.InvalidRequestError)
  assert.throws(() => webhooks.sign('not-a-secret', 'x', 0, payload), WebhookVerificationError)
})

test('real deliveries verify with both libraries, before and after rotateWebhookSecret', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  const hooks = await receiver(t)
  const endpoint = await client.createWebhookEndpoint({ url: `${hooks.url}/good`, eventTypes: ['stock_movement.created'], description: 'good' })
  assert.match(endpoint.secret, /^whsec_/)
  const item = await client.createItem({ sku: 'W-1', name: 'hooks' })
  const wh = await client.createLocation({ code: 'W-WH', name: 'hooks' })
  const movement = await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 3 })

  const first = await waitFor(() => hooks.requests[0], 'the first delivery')
  const evt = webhooks.verify(first.body, first.headers, endpoint.secret)
  assert.equal(evt.type, 'stock_movement.created')
  assert.equal(evt.data.id, movement.id)
  assert.equal(first.headers['webhook-id'], evt.id)
  assert.equal(new Webhook(endpoint.secret).verify(first.body, first.headers).id, evt.id)
  assert.throws(() => webhooks.verify(first.body.replace('"quantity_after":3', '"quantity_after":4'), first.headers, endpoint.secret), WebhookVerificationError)

  const rotated = await client.rotateWebhookSecret(endpoint.id)
  assert.notEqual(rotated.secret, endpoint.secret)
  await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 1 })
  const second = await waitFor(() => hooks.requests[1], 'the delivery after rotation')
  assert.equal(second.headers['webhook-signature'].split(' ').length, 2, 'old and new secret both sign')
  for (const secret of [endpoint.secret, rotated.secret]) {
    assert.equal(webhooks.verify(second.body, second.headers, secret).type, 'stock_movement.created')
    assert.ok(new Webhook(secret).verify(second.body, second.headers))
  }
})

test('endpoints: update and delete with ETags, test ping, dead deliveries replayed', async (t) => {
  const emu = await emulator(t)
  const client = emu.createSandbox()
  let flakyStatus = 500
  const hooks = await receiver(t, () => flakyStatus)
  const endpoint = await client.createWebhookEndpoint({ url: `${hooks.url}/flaky`, eventTypes: ['*'], retryScheduleSeconds: [1, 1] })
  assert.deepEqual(endpoint.retryScheduleSeconds, [1, 1])

  const updated = await client.updateWebhookEndpoint(endpoint.id, endpoint.etag, { description: 'flaky one' })
  assert.equal(updated.description, 'flaky one')
  await assert.rejects(client.updateWebhookEndpoint(endpoint.id, endpoint.etag, { description: 'stale' }), twh.PreconditionFailedError)
  assert.equal((await client.getWebhookEndpoint(endpoint.id)).etag, updated.etag)

  const ping = await client.testWebhookEndpoint(endpoint.id)
  assert.equal(ping.eventType, 'ping')
  await client.createItem({ sku: 'DEAD-1', name: 'dead letter' })

  // 3 attempts (1 + 2 retries 1 s apart, emulator time), then dead.
  const dead = await waitFor(async () => {
    await emu.advanceClock(2000)
    const page = await client.listWebhookDeliveries({ endpointId: endpoint.id, status: 'dead' })
    return page.data.length === 2 && page.data
  }, 'two dead deliveries')
  for (const d of dead) assert.equal(d.attempts.length, 3)
  const exhausted = await client.listEvents({ type: 'webhook_delivery.exhausted' })
  assert.ok(exhausted.data.length >= 2)

  flakyStatus = 200
  const itemDelivery = dead.find((d) => d.eventType === 'item.created')
  const replayed = await client.replayWebhookDelivery(itemDelivery.id)
  assert.equal(replayed.id, itemDelivery.id)
  const ok = await waitFor(async () => {
    const d = await client.getWebhookDelivery(itemDelivery.id)
    return d.status === 'succeeded' && d
  }, 'the replayed delivery to succeed')
  assert.equal(ok.attempts.length, 4)
  const sameId = hooks.requests.filter((r) => r.headers['webhook-id'] === itemDelivery.eventId)
  assert.equal(sameId.length, 4, 'every attempt carried the same webhook-id')

  const { count } = await client.replayWebhookEndpoint(endpoint.id, { status: 'dead', since: new Date(0) })
  assert.equal(count, 1, 'the ping was still dead')
  await waitFor(async () => (await client.listWebhookDeliveries({ endpointId: endpoint.id, status: 'succeeded' })).data.length === 2, 'the ping replayed')

  const all = []
  for await (const d of client.iterWebhookDeliveries({ endpointId: endpoint.id, limit: 1 })) all.push(d.id)
  assert.equal(all.length, 2)
  const endpoints = []
  for await (const e of client.iterWebhookEndpoints()) endpoints.push(e.id)
  assert.deepEqual(endpoints, [endpoint.id])

  const current = await client.getWebhookEndpoint(endpoint.id)
  await assert.rejects(client.deleteWebhookEndpoint(endpoint.id, endpoint.etag), twh.PreconditionFailedError)
  await client.deleteWebhookEndpoint(endpoint.id, current.etag)
  await assert.rejects(client.getWebhookEndpoint(endpoint.id), twh.NotFoundError)
})
