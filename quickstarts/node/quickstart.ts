// TWH quickstart (TypeScript). Run: npm run start:ts
//
// With TWH_BASE_URL and TWH_API_KEY set, it talks to that emulator (e.g. `twh-emulator serve`);
// otherwise it starts the whole emulator inside this process.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client, Emulator, webhooks, type Event, type Movement } from 'twh'

interface Received { headers: http.IncomingHttpHeaders; body: string }

const step = (n: number, text: string): void => console.log(`${n}. ${text}`)

async function main(): Promise<void> {
  // 1. An emulator and a sandbox.
  let emulator: Emulator | null = null
  let client: Client
  if (process.env.TWH_BASE_URL && process.env.TWH_API_KEY) {
    client = new Client()
    step(1, `using the emulator at ${client.baseUrl}`)
  } else {
    emulator = await Emulator.start()
    client = emulator.createSandbox({ name: 'quickstart' })
    step(1, `started an emulator in-process at ${emulator.baseUrl} and made a sandbox`)
  }
  const sandbox = await client.getSandbox()
  console.log(`   sandbox ${sandbox.id} (${sandbox.plan} plan)`)

  // 2. A small HTTP server of our own that receives webhooks.
  const received: Received[] = []
  let notify: () => void = () => {}
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      res.writeHead(204).end()
      notify()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`
  const endpoint = await client.createWebhookEndpoint({ url: hookUrl, eventTypes: ['stock_movement.created'] })
  step(2, `webhook receiver listening at ${hookUrl}, registered as ${endpoint.id}`)

  try {
    // 3. An item and a location (unique names, so the script can run again on the same sandbox).
    const run = Date.now().toString(36)
    const item = await client.createItem({ sku: `MUG-BLU-${run}`, name: 'Mug, blue' })
    const location = await client.createLocation({ code: `WH-${run}`, name: 'Main warehouse' })
    step(3, `created item ${item.sku} (${item.id}) and location ${location.code} (${location.id})`)

    // 4. A receipt of 10. The SDK sends an Idempotency-Key, so a retried call is recorded once.
    const receipt = await client.createMovement({ type: 'receipt', itemId: item.id, locationId: location.id, quantity: 10 })
    step(4, `received 10: movement ${receipt.id}, quantity now ${receipt.lines[0].quantityAfter}`)

    // 5. Read the level with its ETag, and sell 3 only if nobody changed it meanwhile.
    const level = await client.getStockLevel(item.id, location.id)
    step(5, `level: quantity ${level.quantity}, ETag ${level.etag}`)
    const sale = await client.createMovement(
      { type: 'shipment', itemId: item.id, locationId: location.id, quantity: 3 },
      { ifMatch: level.etag },
    )
    const after = await client.getStockLevel(item.id, location.id)
    step(6, `shipped 3 if the level was still ${level.etag}: quantity now ${sale.lines[0].quantityAfter}, ETag ${after.etag}`)

    // 7. The stock_movement.created deliveries reach our server; verify their signatures.
    const deadline = Date.now() + 10_000
    while (received.length < 2 && Date.now() < deadline) {
      await new Promise<void>((resolve) => { notify = resolve; setTimeout(resolve, 500) })
    }
    if (received.length === 0) throw new Error('no webhook arrived within 10 s')
    for (const delivery of received) {
      const headers: Record<string, string | string[] | undefined> = delivery.headers
      const event: Event<Movement> = webhooks.verify(delivery.body, headers, endpoint.secret)
      step(7, `webhook ${event.type} for movement ${event.data.id}: signature verified`)
    }
    console.log('Done.')
  } finally {
    await client.deleteWebhookEndpoint(endpoint.id, (await client.getWebhookEndpoint(endpoint.id)).etag)
    server.closeAllConnections()
    server.close()
    if (emulator) await emulator.stop()
  }
}

main().catch((e: unknown) => { console.error(e); process.exitCode = 1 })
