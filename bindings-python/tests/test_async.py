"""AsyncClient and `async with` Emulator (plain asyncio.run: no pytest-asyncio needed)."""

from __future__ import annotations

import asyncio

import pytest

import twh


def test_async_flow() -> None:
    async def main() -> None:
        async with twh.Emulator() as emu:
            client = emu.create_async_sandbox()
            mug = await client.create_item(sku="MUG", name="Mug")
            wh = await client.create_location(code="WH", name="WH")
            await asyncio.gather(
                *(client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=1) for _ in range(5))
            )
            level = await client.get_stock_level(item_id=mug.id, location_id=wh.id)
            assert level.quantity == 5
            moves = [m async for m in client.iter_movements(item_id=mug.id, limit=2)]
            assert len(moves) == 5
            with pytest.raises(twh.ConflictError):
                await client.create_item(sku="MUG", name="again")

    asyncio.run(main())
