import { Emulator, NotFoundError, type Item } from 'twh'

async function main(): Promise<void> {
  const emu = await Emulator.start()
  const client = emu.createSandbox()
  const item: Item = await client.createItem({ sku: 'TS-1', name: 'typed' })
  const wh = await client.createLocation({ code: 'WH', name: 'wh' })
  await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 1 }, { idempotencyKey: 'k1' })
  const level = await client.getStockLevel(item.id, wh.id)
  const n: number = level.quantity
  for await (const i of client.iterItems({ limit: 10 })) console.log(i.sku, n)
  try { await client.getItem('nope') } catch (e) { if (e instanceof NotFoundError) console.log(e.status, e.code, e.requestId) }
  await emu.stop()
}
void main()
