// Type-checked with `tsc --noEmit --strict` (npm run typecheck, and test/types.test.js); not run.
import {
  Emulator, NotFoundError, PreconditionFailedError, webhooks,
  type Item, type Versioned, type Movement, type StockLevel, type VersionedStockLevel, type WebhookDelivery, type Page, type Status,
  type JournalEntry, type SinkEntry, type ClockState,
} from 'twh'
import { sandbox as testSandbox, type TestSandbox } from 'twh/testing'

async function main(): Promise<void> {
  const emu = await Emulator.start({ rateLimitPerSecond: 0 })
  const { client, sandbox } = emu.createSandboxWith({ name: 'typed', maxRetries: 1 })
  const restricted: string = sandbox.restrictedKey
  const item: Versioned<Item> = await client.createItem({ sku: 'TS-1', name: 'typed', attributes: { colour: 'blue' } })
  const threshold: number | null | undefined = item.lowStockThreshold
  const status: Status = item.status
  const known: boolean = status === 'active' || status === 'archived' || status === 'discontinued'
  const wh = await client.createLocation({ code: 'WH', name: 'wh', kind: 'warehouse' })
  await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 1 }, { idempotencyKey: 'k1' })
  const level: VersionedStockLevel = await client.getStockLevel(item.id, wh.id, { asOf: new Date() })
  const plain: StockLevel = level
  const quantity: number = plain.quantity + plain.version
  const sale = await client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 1 }, { ifMatch: level.etag })
  const movement: Movement = sale
  const n: number = movement.lines[0].quantityAfter
  const reference: string | null | undefined = movement.reference
  const unchanged: Item | null = await client.getItemIfChanged(item.id, item.etag)
  const renamed = await client.updateItemWith(item.id, (current) => ({ name: current.name + '!' }))
  for await (const i of client.iterItems({ limit: 10 })) console.log(i.sku, n, unchanged, renamed.etag, restricted)
  const endpoint = await client.createWebhookEndpoint({ url: `${emu.baseUrl}/_emulator/sink/a`, eventTypes: ['*'] })
  const deliveries: Page<WebhookDelivery> = await client.listWebhookDeliveries({ endpointId: endpoint.id, status: 'dead' })
  const delivery: WebhookDelivery | undefined = deliveries.data[0]
  if (delivery) console.log(delivery.eventType, delivery.status, delivery.attempts.length, delivery.nextAttemptAt)
  const { count } = await client.replayWebhookEndpoint(endpoint.id, { status: 'dead', since: new Date(0) })
  const headers = webhooks.sign([endpoint.secret], 'evt_1', new Date(), '{}')
  console.log(deliveries.data.length, count, webhooks.verify('{}', headers, endpoint.secret).type)
  console.log(threshold, known, quantity, reference)
  try { await client.getItem('nope') } catch (e) {
    if (e instanceof NotFoundError) console.log(e.status, e.code, e.requestId, e.retryAfter)
    if (e instanceof PreconditionFailedError) console.log(e.currentEtag)
  }
  // The handle's control plane, and a connected handle.
  const remote: Emulator = await Emulator.connect(emu.baseUrl, { adminToken: undefined })
  const entries: JournalEntry[] = (await remote.requests({ sandbox, method: 'POST', limit: 10 })).data
  for await (const e of remote.requestsIter({ pathPrefix: '/v1/items' })) console.log(e.requestId, e.idempotentReplayed, e.status)
  const sink: SinkEntry[] = await remote.sink('a')
  const clock: ClockState = await remote.clock({ sandbox: client })
  const now: string = await remote.advanceClock(1000, { sandbox: sandbox.id })
  remote.injectFault({ action: 'delay', delayMs: 10, times: 1, sandbox })
  const [{ client: fixed, sandbox: fixedSandbox }] = await remote.loadFixtures({ sandboxes: [{ name: 'fixed', items: [], locations: [], movements: [], webhookEndpoints: [] }] })
  console.log(entries.length, sink.length, clock.now, now, fixedSandbox.secretKey, fixed.baseUrl, remote.connected)
  const sb: TestSandbox = await testSandbox({ name: 'typed test' })
  console.log(sb.id, await sb.advanceClock(1000), (await sb.requests({ limit: 1 })).data.length)
  await emu.stop()
}
void main()
