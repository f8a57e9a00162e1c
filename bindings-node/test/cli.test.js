'use strict'
// The package's `twh-emulator` bin: the Rust binary's command line (`twh_emulator::cli::run`)
// in its own process. It serves, prints its lines at once into a pipe, stops cleanly on Ctrl-C
// (SIGINT) and SIGTERM, and passes exit statuses through.
const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const pkg = require('../package.json')

const BIN = path.join(__dirname, '..', pkg.bin['twh-emulator'])
const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 15_000

const run = (...args) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })

test('--help and --version exit 0 with the emulator flags', () => {
  const top = run('--help')
  assert.equal(top.status, 0, top.stderr)
  assert.match(top.stdout, /Usage: twh-emulator/)
  const serve = run('serve', '--help')
  assert.equal(serve.status, 0, serve.stderr)
  for (const flag of ['--port', '--host', '--data-dir', '--admin-token', '--webhook-retry-schedule']) {
    assert.ok(serve.stdout.includes(flag), flag)
  }
  const version = run('--version')
  assert.equal(version.status, 0)
  assert.equal(version.stdout.trim(), `twh-emulator ${pkg.version}`)
})

test('bad flags exit 2 and start nothing', () => {
  for (const args of [['serve', '--no-such-flag'], ['serve', '--port', '70000'], ['no-such-command'], []]) {
    const r = run(...args)
    assert.equal(r.status, 2, `${args}: ${r.stderr}`)
    assert.equal(r.stdout, '', `${args}`)
    assert.match(r.stderr, /--help/, `${args}`)
  }
})

test('a busy port exits 1', async () => {
  const taken = net.createServer()
  await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve))
  const { port } = taken.address()
  try {
    const r = run('serve', '--port', String(port))
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`))
  } finally {
    taken.close()
  }
})

/** Resolves with `[code, signal]` when `child` exits; kills it after `timeoutMs`. */
function exited(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`still running after ${timeoutMs} ms`))
    }, timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve([code, signal])
    })
  })
}

/** Starts `twh-emulator serve --port 0 ...args`; resolves with the child, its `export` lines
 *  (read from the pipe while it runs) and its stderr so far. */
async function start(t, ...args) {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
  const logs = { stderr: '' }
  child.stderr.on('data', (d) => (logs.stderr += d))
  const exports = {}
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no key within ${START_TIMEOUT_MS} ms: ${out} ${logs.stderr}`)), START_TIMEOUT_MS)
    child.stdout.on('data', (d) => {
      out += d
      for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) exports[m[1]] = m[2]
      if (exports.TWH_API_KEY) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => reject(new Error(`exited ${code} before printing its key: ${logs.stderr}`)))
  })
  // The lines came through the pipe while it runs: flushed, not held until exit.
  assert.equal(child.exitCode, null)
  return { child, exports, logs }
}

async function get(url, key) {
  const r = await fetch(url, { headers: { authorization: `Bearer ${key}` } })
  return { status: r.status, body: await r.json() }
}

for (const stop of ['SIGINT', 'SIGTERM']) {
  test(`serve prints its URL and key, serves, and stops cleanly on ${stop}`, async (t) => {
    const { child, exports, logs } = await start(t)
    const base = exports.TWH_BASE_URL
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/)
    const items = await get(`${base}/v1/items`, exports.TWH_API_KEY)
    assert.equal(items.status, 200)
    assert.ok(Array.isArray(items.body.data) && items.body.data.length > 0, 'the demo sandbox is seeded')
    assert.equal((await get(`${base}/v1/items`, 'sk_test_wrong')).status, 401)
    child.kill(stop)
    assert.deepEqual(await exited(child, STOP_TIMEOUT_MS), [0, null])
    assert.match(logs.stderr, /shutting down/)
    await assert.rejects(fetch(`${base}/v1/items`), 'the port is closed')
  })
}

test('flags reach the emulator', async (t) => {
  const { child, exports } = await start(t, '--admin-token', 't0ken', '--log', 'warn')
  const clock = `${exports.TWH_BASE_URL}/_emulator/clock`
  assert.equal((await get(clock, 'wrong')).status, 401)
  assert.equal((await get(clock, 't0ken')).status, 200)
  child.kill('SIGINT')
  assert.deepEqual(await exited(child, STOP_TIMEOUT_MS), [0, null])
})
