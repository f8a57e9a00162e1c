'use strict'
// The generated types: `tsc --strict` accepts test/usage.ts (fields of Item, Movement, StockLevel,
// WebhookDelivery, …) and refuses test/typo.ts, which reads a misspelt field.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const tsc = require.resolve('typescript/bin/tsc')

function typecheck(file) {
  const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', 'false', file]
  return spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 })
}

test('tsc --strict passes a usage file and fails one with a misspelt field', () => {
  const good = typecheck('test/usage.ts')
  assert.equal(good.status, 0, good.stdout + good.stderr)
  const bad = typecheck('test/typo.ts')
  assert.equal(bad.status, 2, bad.stdout + bad.stderr)
  assert.match(bad.stdout, /typo\.ts\(\d+,\d+\): error TS2551: Property 'lowStokThreshold' does not exist/)
  assert.equal(bad.stdout.trim().split('\n').filter((l) => l.includes('error TS')).length, 1, bad.stdout)
})
