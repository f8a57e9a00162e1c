"""Checked with `mypy --strict tests/typing_usage.py`: the public API as a user types it."""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Optional

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


def typed_results(client: twh.Client, item_id: str, loc_id: str) -> None:
    item = client.get_item(item_id)
    sku: str = item.sku
    threshold: Optional[int] = item.low_stock_threshold
    created: dt.datetime = item.created_at
    status: twh.types.Status = item.status
    newer: Any = item.get("a_field_newer_than_this_package")  # kept, untyped
    maybe: Optional[twh.types.Item] = client.get_item_if_changed(item_id, etag=item.etag)
    moved = client.create_movement(type="transfer", item_id=item_id, from_location_id=loc_id, to_location_id=loc_id, quantity=1)
    lines: List[twh.types.MovementLine] = moved.lines
    delta: int = lines[0].delta
    batch: List[twh.types.Movement] = client.create_movement_batch(
        [{"type": "receipt", "item_id": item_id, "location_id": loc_id, "quantity": 1}]
    )
    level: twh.types.StockLevel = client.get_stock_level(item_id=item_id, location_id=loc_id, as_of=created)
    endpoint = client.create_webhook_endpoint(url="http://127.0.0.1:9/hooks", event_types=["*"])
    secret: str = endpoint.secret
    deliveries: List[twh.types.WebhookDelivery] = client.list_webhook_deliveries(status="dead").data
    attempts: List[twh.types.Attempt] = deliveries[0].attempts if deliveries else []
    invoice: Optional[twh.types.Invoice] = next(iter(client.iter_invoices()), None)
    job: twh.types.Job = client.import_movements_csv("type,item_id,location_id,quantity\n")
    renamed: twh.types.Location = client.update_location_with(loc_id, lambda loc: {"name": loc.name + "!"})
    again: Optional[twh.types.Movement] = client.get_movement_if_changed(moved.id, etag=moved.etag)
    print(sku, threshold, status, newer, again, maybe, delta, batch, level.quantity, secret, attempts, invoice, job.status, renamed)


async def async_flow(emu: twh.Emulator) -> None:
    client: twh.AsyncClient = emu.create_async_sandbox()
    async for item in client.iter_items():
        print(item.sku)
    first: twh.types.Item = await client.create_item(sku="A", name="A")
    page: twh.Page[twh.types.Event] = await client.list_events(type="item.created")
    print(first.version, [e.created_at for e in page])


def main() -> None:
    with twh.Emulator() as emu:
        flow(emu)
    ev = twh.webhooks.verify(b"{}", {"webhook-id": "x"}, "whsec_x", tolerance=dt.timedelta(minutes=5))
    print(ev)
