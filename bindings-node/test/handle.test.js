'use strict'
// The emulator handle's control plane (docs/guide/emulator.md): the sink,
// clocks, faults, the request journal and fixtures, in-process and through Emulator.connect to
// an emulator another process serves.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn } = require('node:child_process')
const readline = require('node:readline')
const twh = require('..')
const { emulator, waitFor } = require('./helpers.js')

/** `twh-emulator` of this workspace: TWH_EMULATOR_BIN, else the workspace's target dir. */
function emulatorBinary() {
  if (process.env.TWH_EMULATOR_BIN) return process.env.TWH_EMULATOR_BIN
  for (const dir of [process.env.CARGO_TARGET_DIR, path.join(__dirname, '..', '..', 'target')]) {
    if (dir && fs.existsSync(path.join(dir, 'debug', 'twh-emulator'))) return path.join(dir, 'debug', 'twh-emulator')
  }
  return null
}

/**
 * An emulator of another process: `twh-emulator serve --port 0 --admin-token T` when the binary
 * is at hand, else a second Node serving `Emulator.start()` (no admin token then). Killed when
 * the test ends.
 */
async function served(t, adminToken) {
  const binary = emulatorBinary()
  const [cmd, args, prefix, token] = binary
    ? [binary, ['serve', '--port', '0', '--log', 'warn', '--admin-token', adminToken], 'export TWH_BASE_URL=', adminToken]
    : [process.execPath, ['-e', `require(${JSON.stringify(require.resolve('..'))}).Emulator.start().then((e) => { console.log('URL=' + e.baseUrl); setInterval(() => {}, 1 << 30) })`], 'URL=', undefined]
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => child.kill())
  const lines = readline.createInterface({ input: child.stdout })
  for await (const line of lines) {
    if (line.startsWith(prefix)) return { baseUrl: line.slice(prefix.length).trim(), adminToken: token }
  }
  throw new Error('the served emulator printed no URL')
}

async function everyMethod(emu) {
  const { client, sandbox } = emu.createSandboxWith()
  assert.equal((await client.getSandbox()).id, sandbox.id)

  // The sink: what an endpoint pointed at it received, verifiable with the endpoint's secret.
  const sink = `node-handle-${sandbox.id.slice(4)}`
  const endpoint = await client.createWebhookEndpoint({ url: `${emu.baseUrl}/_emulator/sink/${sink}`, eventTypes: ['item.created'] })
  const item = await client.createItem({ sku: 'SINK-1', name: 'Sink' })
  const entries = await waitFor(async () => { const e = await emu.sink(sink); return e.length >= 1 && e }, 'a delivery')
  assert.equal(entries.length, 1)
  const event = twh.webhooks.verify(entries[0].body, entries[0].headers, endpoint.secret)
  assert.equal(event.type, 'item.created')
  assert.equal(event.data.id, item.id)
  await emu.clearSink(sink)
  assert.deepEqual(await emu.sink(sink), [])
  await assert.rejects(emu.sink('../escape'), twh.InvalidRequestError)

  // The clock.
  const before = new Date((await emu.clock()).now)
  const after = new Date(await emu.advanceClock(3_600_000))
  assert.ok(after - before >= 3_600_000, `${before} → ${after}`)
  const later = new Date(await emu.advanceClock(1_500))
  assert.ok(later - after >= 1_500, `${after} → ${later}`)
  await assert.rejects(emu.advanceClock(-1), twh.InvalidRequestError)

  // Faults: armed, listed with what is left, fired, cleared.
  const fault = emu.injectFault({ action: 'error_before_commit', method: 'GET', pathPrefix: '/v1/plans', times: 2 })
  assert.deepEqual((await emu.faults()).map((f) => f.id), [fault.id])
  const noRetry = client.withOptions({ maxRetries: 0 })
  await assert.rejects(noRetry.listPlans(), twh.ServerError)
  assert.equal((await emu.faults())[0].remaining, 1)
  emu.clearFaults()
  assert.deepEqual(await emu.faults(), [])
  await noRetry.listPlans()
  assert.throws(() => emu.injectFault({ action: 'delay', delayMs: 600_000, times: 1 }), twh.ValidationError)
  assert.deepEqual(await emu.faults(), [])

  await journal(emu, client, sandbox)
  await fixtures(emu)
}

async function journal(emu, client, sandbox) {
  const page = await emu.requests({ sandbox, method: 'POST', pathPrefix: '/v1/items' })
  assert.equal(page.data.length, 1, JSON.stringify(page))
  const entry = page.data[0]
  assert.deepEqual([entry.method, entry.path, entry.status, entry.sandboxId], ['POST', '/v1/items', 201, sandbox.id])
  assert.equal(entry.idempotentReplayed, false)
  assert.equal(entry.fault ?? null, null)
  assert.equal(entry.request.body.sku, 'SINK-1')
  assert.deepEqual(await emu.request(entry.id), entry)

  // A call whose first attempt failed after commit: two attempts, one request id, the second replayed.
  emu.injectFault({ action: 'error_after_commit', method: 'POST', pathPrefix: '/v1/locations', times: 1 })
  await client.createLocation({ code: 'J-1', name: 'Journal' }, { idempotencyKey: 'node-journal-1' })
  const attempts = (await emu.requests({ sandbox: sandbox.id, idempotencyKey: 'node-journal-1' })).data
  assert.deepEqual(attempts.map((e) => [e.status, e.idempotentReplayed, e.fault != null]), [[500, false, true], [201, true, false]])
  assert.equal(attempts[0].requestId, attempts[1].requestId)
  const sameCall = (await emu.requests({ requestId: attempts[0].requestId })).data
  assert.deepEqual(sameCall.map((e) => e.id), attempts.map((e) => e.id))

  // Paging one at a time sees every entry once, in order.
  const everything = (await emu.requests({ sandbox: sandbox.id, limit: 100 })).data
  assert.ok(everything.length >= 4)
  const iterated = []
  for await (const e of emu.requestsIter({ sandbox: sandbox.id, limit: 1 })) iterated.push(e.id)
  assert.deepEqual(iterated, everything.map((e) => e.id))
  // The sandbox may be named by its client too (which asks it for its id).
  assert.ok((await emu.requests({ sandbox: client, limit: 100 })).data.some((e) => e.id === entry.id))
  await assert.rejects(emu.requests({ limit: 0 }), twh.InvalidRequestError)
  await assert.rejects(emu.requests({ cursor: 'not-a-cursor' }), twh.ValidationError)
  await emu.clearRequests()
  assert.deepEqual((await emu.requests({ sandbox: sandbox.id })).data, [])
}

async function fixtures(emu) {
  const key = 'sk_test_' + crypto.randomUUID().replaceAll('-', '')
  const document = (shipped) => ({
    sandboxes: [{
      name: 'fixture shop',
      secretKey: key,
      items: [{ sku: 'FIX-1', name: 'Fixed', attributes: { colour_name: 'blue' } }],
      locations: [{ code: 'WH', name: 'Warehouse' }],
      movements: [
        { type: 'receipt', sku: 'FIX-1', location: 'WH', quantity: 10 },
        { type: 'shipment', sku: 'FIX-1', location: 'WH', quantity: shipped },
      ],
    }],
  })
  const refused = await emu.loadFixtures(document(11)).then(() => null, (e) => e)
  assert.ok(refused instanceof twh.ValidationError, String(refused))
  assert.ok(refused.errors.some((e) => e.field.startsWith('sandboxes[0].movements[1]')), JSON.stringify(refused.errors))
  const [{ client, sandbox }] = await emu.loadFixtures(document(4))
  assert.equal(sandbox.secretKey, key)
  assert.equal(sandbox.name, 'fixture shop')
  const items = (await client.listItems()).data
  assert.deepEqual(items.map((i) => i.sku), ['FIX-1'])
  assert.deepEqual(items[0].attributes, { colour_name: 'blue' }, 'attributes are data: their keys are kept')
  assert.deepEqual((await client.listStockLevels()).data.map((l) => l.quantity), [6])
  await assert.rejects(emu.loadFixtures(document(4)), (e) => e instanceof twh.ConflictError && e.code === 'key_taken')
}

test('every method of a started emulator', async (t) => {
  const emu = await emulator(t)
  assert.equal(emu.connected, false)
  await everyMethod(emu)
})

test('connect to an emulator of this process; closing the handle stops nothing', async (t) => {
  const server = await emulator(t)
  const emu = await twh.Emulator.connect(server.baseUrl)
  assert.equal(emu.connected, true)
  assert.equal(emu.baseUrl, server.baseUrl)
  await everyMethod(emu)
  await emu.stop()
  await assert.rejects(emu.clock(), twh.ConfigurationError)
  const again = await twh.Emulator.connect(server.baseUrl)
  assert.deepEqual((await again.createSandbox().listItems()).data, [])
})

test('connect to an emulator another process serves, with its admin token', async (t) => {
  const server = await served(t, 'node-handle-admin-token')
  const emu = await twh.Emulator.connect(server.baseUrl, { adminToken: server.adminToken })
  await everyMethod(emu)
  if (server.adminToken) {
    await assert.rejects(twh.Emulator.connect(server.baseUrl), twh.AuthenticationError)
    await assert.rejects(twh.Emulator.connect(server.baseUrl, { adminToken: 'wrong' }), twh.AuthenticationError)
  }
  await assert.rejects(twh.Emulator.connect('http://127.0.0.1:9'), twh.ConnectionError)
  await assert.rejects(twh.Emulator.connect(server.baseUrl, 'token'), twh.InvalidRequestError)
})

test('a deterministic seed repeats ids and starts the clock in 2030', async () => {
  const run = async (seed) => {
    const emu = await twh.Emulator.start({ deterministic: seed })
    try {
      const client = emu.createSandbox()
      const item = await client.createItem({ sku: 'SEEDED-1', name: 'Seeded' })
      const sandbox = await client.getSandbox()
      const clock = await emu.clock()
      return [sandbox.id, item.id, clock.now]
    } finally {
      await emu.stop()
    }
  }
  const [first, again, other] = [await run(42), await run(42), await run(43)]
  assert.deepEqual(first, again)
  assert.notDeepEqual(first.slice(0, 2), other.slice(0, 2))
  assert.match(String(first[2]), /^2030-01-01T00:00:00/)
})

test('journalSize bounds the request journal; 0 turns it off', async () => {
  const small = await twh.Emulator.start({ journalSize: 2 })
  try {
    const client = small.createSandbox()
    for (let i = 0; i < 3; i++) await client.createItem({ sku: `J-${i}`, name: 'Journal' })
    const kept = (await small.requests({ limit: 100 })).data
    assert.deepEqual(kept.map((e) => e.path), ['/v1/items', '/v1/items'])
  } finally {
    await small.stop()
  }
  const off = await twh.Emulator.start({ journalSize: 0 })
  try {
    await off.createSandbox().createItem({ sku: 'J-0', name: 'Journal' })
    assert.deepEqual((await off.requests({ limit: 100 })).data, [])
  } finally {
    await off.stop()
  }
})
