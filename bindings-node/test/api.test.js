'use strict'
// The public surface: the .d.ts files declare exactly the runtime methods; the version and the
// User-Agent; sandboxes and keys.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const ts = require('typescript')
const { emulator, twh } = require('./helpers.js')
const pkg = require('../package.json')

/** Members of the classes `className` declared in `file` (relative to the package). */
function declaredMembers(file, className) {
  const full = path.join(__dirname, '..', file)
  const source = ts.createSourceFile(full, fs.readFileSync(full, 'utf8'), ts.ScriptTarget.Latest)
  const cls = source.statements.find((s) => ts.isClassDeclaration(s) && s.name?.text === className)
  assert.ok(cls, `${file} declares ${className}`)
  return cls.members.filter((m) => m.name && ts.isIdentifier(m.name)).map((m) => m.name.text)
}

/** Public methods and accessors of a class and the classes it extends (static ones too). */
function runtimeMembers(Class) {
  const names = new Set()
  for (let proto = Class.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) if (name !== 'constructor' && !name.startsWith('_')) names.add(name)
  }
  for (const name of Object.getOwnPropertyNames(Class)) if (typeof Class[name] === 'function' && !name.startsWith('_')) names.add(name)
  return [...names].sort()
}

test('index.d.ts and lib/operations.d.ts declare exactly the methods of Client and Emulator', () => {
  const client = [...declaredMembers('index.d.ts', 'Client'), ...declaredMembers('lib/operations.d.ts', 'Operations')]
  assert.deepEqual(client.sort(), runtimeMembers(twh.Client))
  assert.deepEqual(declaredMembers('index.d.ts', 'Emulator').sort(), runtimeMembers(twh.Emulator))
  // The native client knows no operation: one `call` for all of them, of the client's handle
  // (and a cancellable form, for a per-call signal).
  const binding = require('../binding.js')
  assert.deepEqual(Object.getOwnPropertyNames(binding.NativeClient.prototype).sort(), ['baseUrl', 'callCancellable', 'constructor', 'handle', 'withApiKey', 'withObserver', 'withOptions'])
  assert.equal(typeof binding.call, 'function')
})

test('the native layer and the package agree on the version', () => {
  assert.equal(twh.VERSION, pkg.version)
})

test('User-Agent is twh-node/<version>, then the suffix', async (t) => {
  const seen = []
  const server = http.createServer((req, res) => { seen.push(req.headers); res.writeHead(500).end() })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(r) }))
  const baseUrl = `http://127.0.0.1:${server.address().port}`
  await assert.rejects(new twh.Client({ apiKey: 'sk_test_ua', baseUrl, maxRetries: 0 }).getSandbox(), twh.ServerError)
  await assert.rejects(new twh.Client({ apiKey: 'sk_test_ua', baseUrl, maxRetries: 0, userAgentSuffix: 'my-shop/2.3' }).getSandbox(), twh.ServerError)
  assert.equal(seen[0]['user-agent'], `twh-node/${pkg.version}`)
  assert.equal(seen[1]['user-agent'], `twh-node/${pkg.version} my-shop/2.3`)
  assert.match(seen[0]['x-request-id'], /.+/)
})

test('sandboxes: get, roll the key (old one works for the grace period), reset, create, delete', async (t) => {
  const emu = await emulator(t, { keyGraceSeconds: 60 })
  const { client, sandbox } = emu.createSandboxWith({ name: 'keys', plan: 'pro' })
  assert.deepEqual(await client.getSandbox(), { id: sandbox.id, name: 'keys', plan: 'pro', createdAt: sandbox.createdAt })
  const rolled = await client.rollApiKey()
  assert.match(rolled.secretKey, /^sk_test_/)
  const fresh = client.withApiKey(rolled.secretKey)
  assert.equal((await fresh.getSandbox()).id, sandbox.id)
  assert.equal((await client.getSandbox()).id, sandbox.id, 'the old key works during the grace period')
  await emu.advanceClock(61_000)
  await assert.rejects(client.getSandbox(), (e) => e instanceof twh.AuthenticationError && e.status === 401 && e.code === 'unauthenticated' && e.requestId.length > 0)

  await fresh.createItem({ sku: 'GONE', name: 'gone' })
  await fresh.resetSandbox()
  assert.equal((await fresh.listItems()).data.length, 0)

  const other = await fresh.createSandbox({ name: 'other', seed: 'demo' })
  assert.match(other.secretKey, /^sk_test_/)
  const demo = fresh.withApiKey(other.secretKey)
  assert.ok((await demo.listItems()).data.length > 0, 'the demo seed has items')
  await demo.deleteSandbox()
  await assert.rejects(demo.getSandbox(), twh.AuthenticationError)
  assert.throws(() => emu.createSandbox({ apiKey: 'x' }), twh.InvalidRequestError)

  // Options a call does not have are refused, not ignored.
  await assert.rejects(fresh.createItem({ sku: 'O', name: 'o' }, { ifMatch: '"1"' }), /unknown option "ifMatch"/)
  await assert.rejects(fresh.createItem({ sku: 'O', name: 'o' }, { idempotencykey: 'k' }), twh.InvalidRequestError)
  await assert.rejects(fresh.rollApiKey('k'), /options must be an object/)
  assert.equal((await fresh.listItems()).data.length, 0, 'nothing was created')
})
