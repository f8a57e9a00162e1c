"""Checked with `mypy --strict tests/typing_usage.py`: the public API as a user types it."""

from __future__ import annotations

import datetime as dt
from typing import List

import twh


def flow(emu: twh.Emulator) -> int:
    client: twh.Client = emu.create_sandbox()
    mug: twh.types.Item = client.create_item(sku="MUG", name="Mug", low_stock_threshold=2)
    wh = client.create_location(code="WH", name="WH")
    client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=3, idempotency_key="k1")
    level = client.get_stock_level(item_id=mug.id, location_id=wh.id)
    etag: str | None = level.etag
    page: twh.Page[twh.types.Movement] = client.list_movements(item_id=mug.id, limit=10)
    ids: List[str] = [str(m.id) for m in client.iter_movements(item_id=mug.id)]
    now: dt.datetime = emu.advance_clock(dt.timedelta(hours=1))
    fault: twh.types.Fault = emu.inject_fault("error_after_commit", times=1)
    try:
        client.get_item("nope")
    except twh.NotFoundError as e:
        status: int | None = e.status
        code: str | None = e.code
        rid: str | None = e.request_id
        retry: float | None = e.retry_after
        print(status, code, rid, retry)
    d = mug.to_dict()
    print(etag, page.has_more, now, fault, d)
    return len(ids)


async def async_flow(emu: twh.Emulator) -> None:
    client: twh.AsyncClient = emu.create_async_sandbox()
    async for item in client.iter_items():
        print(item.sku)


def main() -> None:
    with twh.Emulator() as emu:
        flow(emu)
    ev = twh.webhooks.verify(b"{}", {"webhook-id": "x"}, "whsec_x", tolerance=dt.timedelta(minutes=5))
    print(ev)
