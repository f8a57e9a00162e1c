'use strict'
// The Client has a method for every SDK method of openapi/openapi.json, derived here from the
// document by the rules of SDK.md "One operation table" (independently of the generator); and a
// result keeps what this package does not know yet (a new field, a new enum value).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { twh } = require('./helpers.js')

const camel = (snake) => snake.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())

/** The SDK method names the document implies, snake_case. */
function sdkMethods(doc) {
  const parameters = doc.components?.parameters ?? {}
  const names = []
  for (const item of Object.values(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'put', 'post', 'patch', 'delete'].includes(method)) continue
      if ((op.tags ?? []).includes('emulator')) continue
      const name = op['x-sdk-name'] ?? op.operationId
      names.push(name)
      const params = (op.parameters ?? []).map((p) => (p.$ref ? parameters[p.$ref.split('/').pop()] : p))
      if (params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'if-none-match')) names.push(`${name}_if_changed`)
      const csv = Object.entries(op.responses ?? {}).some(([status, r]) => status.startsWith('2') && r.content?.['text/csv'])
      if (csv) names.push(`${name}_csv`)
    }
  }
  return names
}

test('every SDK method of openapi/openapi.json is a method of Client', () => {
  const doc = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'openapi', 'openapi.json'), 'utf8'))
  const names = sdkMethods(doc).map(camel)
  assert.ok(names.length >= 50, `${names.length} methods`)
  for (const name of ['getItem', 'getMovementIfChanged', 'getEventIfChanged', 'getStockLevel', 'exportUsageCsv', 'listMovements']) {
    assert.ok(names.includes(name), `the document implies ${name}`)
  }
  const missing = names.filter((name) => typeof twh.Client.prototype[name] !== 'function')
  assert.deepEqual(missing, [], 'methods the document has and Client lacks')
})

test('a field and an enum value this package does not know are kept on the result', async (t) => {
  const item = {
    id: 'itm_1', sku: 'NEW-1', name: 'from the future', unit: 'each', attributes: { colour_code: 'b' },
    status: 'discontinued', version: 3, created_at: '2030-01-01T00:00:00Z', updated_at: '2030-01-01T00:00:00Z',
    carbon_footprint: { kg_co2e: 1.5 },
  }
  const seen = []
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    if (req.method === 'GET' && /^\/v1\/items\/[^/]+$/.test(req.url)) {
      res.writeHead(200, { 'content-type': 'application/json', etag: '"3"' }).end(JSON.stringify(item))
    } else {
      res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"status":404,"code":"not_found","detail":"no"}')
    }
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(r) }))
  const client = new twh.Client({ apiKey: 'sk_test_future', baseUrl: `http://127.0.0.1:${server.address().port}`, maxRetries: 0 })

  const read = await client.getItem('itm_1')
  assert.deepEqual(seen, ['GET /v1/items/itm_1'])
  assert.equal(read.status, 'discontinued', 'an unknown enum value is a plain string')
  assert.deepEqual(read.carbonFootprint, { kgCo2e: 1.5 }, 'an unknown field is kept (camelCase, as every field)')
  assert.deepEqual(read.attributes, { colour_code: 'b' }, 'keys inside attributes are left alone')
  assert.equal(read.lowStockThreshold, undefined)
  assert.equal(read.etag, '"3"')
})
