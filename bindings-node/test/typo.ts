// Must NOT type-check (test/types.test.js): a misspelt field of a generated result type.
import type { Item } from 'twh'

export function threshold(item: Item): number | null | undefined {
  return item.lowStokThreshold
}
