// Sequential calls per second through the `twh` binding vs Node's global fetch doing the same
// HTTP calls against the same in-process emulator, in the same run. The machine this runs on is
// shared and noisy, so the two take turns in short slices (SLICE calls of one, then SLICE of the
// other, …) and each side's rate is its calls over its summed time: a burst of noise lands on
// both alike. The table gives the rates and the ratio binding / fetch.
//
//   node bench/node/bench.mjs [--calls N] [--rounds R] [--journal] [--base-url URL]
//                                                                       (N calls per side per round)
//
// --base-url runs both sides against an emulator served elsewhere (`twh-emulator serve
// --journal-size 0 --rate-limit-per-second 0`) instead of one in this process: the emulator's
// work then runs on its own threads, not this process's, and two builds of the binding can be
// compared against the very same server.
//
// The emulator's request journal is off unless --journal: both sides pay for it alike, and its
// work (and its churn through the caches) would move the ratio without saying anything about the
// binding. The table also gives each side's µs per call; the difference between them is what the
// binding costs over fetch, whatever the emulator's own cost.
//
// Use a release build of the addon (`cd bindings-node && npm run build`); a debug build is
// refused unless --allow-debug.
import { randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    'allow-debug': { type: 'boolean', default: false },
    journal: { type: 'boolean', default: false },
    'base-url': { type: 'string' },
  },
})
const CALLS = Number(args.calls)
const ROUNDS = Number(args.rounds)
if (!(CALLS > 0 && CALLS <= 1_000_000 && ROUNDS > 0 && ROUNDS <= 100)) throw new Error('--calls 1..=1000000, --rounds 1..=100')

const twh = require('../../bindings-node')
const addon = require.resolve('../../bindings-node/twh.linux-x64-gnu.node')
const addonMiB = statSync(addon).size / 2 ** 20
if (addonMiB > 60 && !args['allow-debug']) {
  throw new Error(`${addon} is ${addonMiB.toFixed(0)} MiB: a debug build. Run \`npm run build\` in bindings-node first (or pass --allow-debug).`)
}

// No rate limit: the default (1000 requests a second per key) would be the thing measured.
const emu = args['base-url']
  ? await twh.Emulator.connect(args['base-url'])
  : await twh.Emulator.start({ rateLimitPerSecond: 0, journalSize: args.journal ? undefined : 0 })
const { client, sandbox } = emu.createSandboxWith({ name: 'bench', plan: 'pro' })
const item = await client.createItem({ sku: 'BENCH-1', name: 'bench' })
const location = await client.createLocation({ code: 'BENCH-WH', name: 'bench' })

// fetch, doing what the SDK does on the wire: auth, a request id, an idempotency key on POSTs,
// JSON both ways, the status checked.
const base = emu.baseUrl
const headers = { authorization: `Bearer ${sandbox.secretKey}`, 'user-agent': 'bench-fetch' }
async function fetchJson(method, path, body) {
  const h = { ...headers, 'x-request-id': randomUUID() }
  if (body !== undefined) {
    h['content-type'] = 'application/json'
    h['idempotency-key'] = randomUUID()
  }
  const res = await fetch(base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) })
  const value = await res.json()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(value)}`)
  return value
}

const receiptWire = { type: 'receipt', item_id: item.id, location_id: location.id, quantity: 1 }
const scenarios = [
  {
    name: 'GET item',
    binding: () => client.getItem(item.id),
    fetch: () => fetchJson('GET', `/v1/items/${item.id}`),
  },
  {
    name: 'GET stock level',
    binding: () => client.getStockLevel(item.id, location.id),
    fetch: () => fetchJson('GET', `/v1/items/${item.id}/stock-levels/${location.id}`),
  },
  {
    name: 'POST receipt',
    binding: () => client.createMovement({ type: 'receipt', itemId: item.id, locationId: location.id, quantity: 1 }),
    fetch: () => fetchJson('POST', '/v1/stock-movements', receiptWire),
  },
  {
    name: 'GET items page (20)',
    binding: () => client.listItems({ limit: 20 }),
    fetch: () => fetchJson('GET', '/v1/items?limit=20'),
  },
]

/** The binding must make at least this many calls per call fetch makes, on every call. */
const TARGET_RATIO = 1.5

/** Calls per turn before the other side's turn. */
const SLICE = 50

async function timed(call, n) {
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await call()
  return Number(process.hrtime.bigint() - start) / 1e9
}

/** One round: CALLS calls per side in alternating slices; returns [binding/s, fetch/s]. */
async function round(s) {
  let b = 0
  let f = 0
  for (let done = 0; done < CALLS; done += SLICE) {
    const n = Math.min(SLICE, CALLS - done)
    b += await timed(s.binding, n)
    f += await timed(s.fetch, n)
  }
  return [CALLS / b, CALLS / f]
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// Seed enough items for a full page, then warm both paths up.
for (let i = 0; i < 20; i++) await client.createItem({ sku: `BENCH-P-${i}`, name: 'page' })
for (const s of scenarios) for (let i = 0; i < 200; i++) { await s.binding(); await s.fetch() }

const rows = []
for (const s of scenarios) {
  const b = []
  const f = []
  for (let r = 0; r < ROUNDS; r++) {
    const [rb, rf] = await round(s)
    b.push(rb)
    f.push(rf)
  }
  rows.push({ name: s.name, binding: median(b), fetch: median(f) })
}
await emu.stop()

const pad = (s, n) => String(s).padEnd(n)
const num = (x) => Math.round(x).toLocaleString('en-US').padStart(10)
const where = args['base-url'] ? `emulator at ${args['base-url']}` : `in-process emulator, journal ${args.journal ? 'on' : 'off'}`
console.log(`Sequential calls per second, median of ${ROUNDS} rounds of ${CALLS} calls per side in alternating slices of ${SLICE}; Node ${process.version}, addon ${addonMiB.toFixed(1)} MiB, ${where}`)
console.log(`${pad('call', 22)} ${'binding'.padStart(10)} ${'fetch'.padStart(10)}  binding/fetch  µs/call: binding  fetch  difference`)
const us = (perSecond) => 1e6 / perSecond
for (const r of rows) {
  const [b, f] = [us(r.binding), us(r.fetch)]
  console.log(`${pad(r.name, 22)} ${num(r.binding)} ${num(r.fetch)}  ${(r.binding / r.fetch).toFixed(2).padStart(12)}x  ${b.toFixed(1).padStart(15)} ${f.toFixed(1).padStart(6)} ${(b - f).toFixed(1).padStart(11)}`)
}
const worst = Math.min(...rows.map((r) => r.binding / r.fetch))
console.log(`target: binding >= ${TARGET_RATIO}x fetch on every call; worst ratio ${worst.toFixed(2)}x: ${worst >= TARGET_RATIO ? 'met' : 'NOT met'}`)
