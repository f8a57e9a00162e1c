// Type-checked with `tsc --noEmit --strict` (npm run typecheck, and test/types.test.js); not run.
import {
  Emulator, NotFoundError, PreconditionFailedError, webhooks,
  type Item, type Versioned, type Movement, type StockLevel, type VersionedStockLevel, type WebhookDelivery, type Page, type Status,
} from 'twh'

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
  await emu.stop()
}
void main()
