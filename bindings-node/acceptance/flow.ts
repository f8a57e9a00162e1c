// Acceptance (TypeScript, checked with tsc --noEmit --strict, then compiled and run).
import { Emulator, PreconditionFailedError, type Item, type VersionedStockLevel } from 'twh'

async function main(): Promise<void> {
  const emu = await Emulator.start()
  try {
    const client = emu.createSandbox()
    const item: Item = await client.createItem({ sku: 'TS-1', name: 'ts' })
    const wh = await client.createLocation({ code: 'WH-1', name: 'main' })
    await client.createMovement({ type: 'receipt', itemId: item.id, locationId: wh.id, quantity: 10 })
    const level: VersionedStockLevel = await client.getStockLevel(item.id, wh.id)
    const sale = await client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag })
    if (sale.lines[0].quantityAfter !== 7) throw new Error(`expected 7, got ${sale.lines[0].quantityAfter}`)
    try {
      await client.createMovement({ type: 'shipment', itemId: item.id, locationId: wh.id, quantity: 3 }, { ifMatch: level.etag })
      throw new Error('a stale If-Match was accepted')
    } catch (e) {
      if (!(e instanceof PreconditionFailedError) || e.status !== 412) throw e
    }
    const now: number = (await client.getStockLevel(item.id, wh.id)).quantity
    console.log('ts: ledger flow ok, level', now)
  } finally {
    await emu.stop()
  }
}
void main()
