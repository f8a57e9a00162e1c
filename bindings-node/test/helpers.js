'use strict'
// Shared by the tests: an emulator per test, a small node:http webhook receiver, bounded waits.
const http = require('node:http')
const twh = require('..')

/** Starts an emulator stopped when the test ends. */
async function emulator(t, options) {
  const emu = await twh.Emulator.start(options)
  t.after(() => emu.stop())
  return emu
}

/** Waits until `check()` returns a truthy value; polls every 20 ms for at most `timeoutMs`. */
async function waitFor(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * A webhook receiver on 127.0.0.1: records each request (path, headers, raw body); answers
 * `status(path)` (default 200). Closed when the test ends.
 */
async function receiver(t, status = () => 200) {
  const requests = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      requests.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(status(req.url)).end()
    })
  })
  server.keepAliveTimeout = 100
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => { server.closeAllConnections(); server.close(r) }))
  return { url: `http://127.0.0.1:${server.address().port}`, requests }
}

module.exports = { emulator, waitFor, receiver, twh }
