"""The ledger flow end to end, against the in-process emulator (the shipped fixtures)."""

from __future__ import annotations

import pytest

import twh


def _item_and_location(client: twh.Client) -> "tuple[twh.types.Item, twh.types.Location]":
    mug = client.create_item(sku="MUG-BLU", name="Mug, blue")
    wh = client.create_location(code="WH-1", name="Main warehouse")
    return mug, wh


def test_ledger_flow(twh_client: twh.Client) -> None:
    client = twh_client
    mug, wh = _item_and_location(client)
    assert mug.sku == "MUG-BLU" and mug.etag
    assert mug.to_dict()["name"] == "Mug, blue"

    receipt = client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=10)
    assert receipt.lines[0].quantity_after == 10

    level = client.get_stock_level(item_id=mug.id, location_id=wh.id)
    assert level.quantity == 10 and level.etag

    sale = client.create_movement(type="shipment", item_id=mug.id, location_id=wh.id, quantity=3, if_match=level.etag)
    assert sale.lines[0].quantity_after == 7

    # The same ETag again is stale: 412, nothing written.
    with pytest.raises(twh.PreconditionFailedError) as stale:
        client.create_movement(type="shipment", item_id=mug.id, location_id=wh.id, quantity=3, if_match=level.etag)
    assert stale.value.status == 412
    assert client.get_stock_level(item_id=mug.id, location_id=wh.id).quantity == 7

    # Reversal, then the ledger as the iterator and as pages.
    client.reverse_movement(sale.id, reason="customer return")
    assert client.get_stock_level(item_id=mug.id, location_id=wh.id).quantity == 10
    ledger = list(client.iter_movements(item_id=mug.id, limit=1))
    assert len(ledger) == 3 and [m.id for m in ledger[:2]] == [receipt.id, sale.id]
    assert ledger[2].reverses == sale.id
    page = client.list_movements(item_id=mug.id, limit=2)
    assert len(page) == 2 and page.has_more

    levels = list(client.iter_stock_levels(item_id=mug.id))
    assert [lv.quantity for lv in levels] == [10]
    assert client.get_movement(receipt.id).id == receipt.id

    events = list(client.iter_events())
    assert events, "writes emit events"
    assert client.get_event(events[0].id).id == events[0].id


def test_items_and_locations(twh_client: twh.Client) -> None:
    client = twh_client
    for i in range(5):
        client.create_item(sku=f"SKU-{i}", name=f"Item {i}")
    assert [it.sku for it in client.iter_items(limit=2)] == [f"SKU-{i}" for i in range(5)]
    item = client.get_item(client.list_items(sku="SKU-3").data[0].id)
    renamed = client.update_item(item.id, etag=item.etag, name="Renamed")
    assert renamed.name == "Renamed" and renamed.etag != item.etag
    with pytest.raises(twh.PreconditionFailedError):
        client.update_item(item.id, etag=item.etag, name="Stale")
    bumped = client.update_item_with(item.id, lambda cur: {"low_stock_threshold": 10})
    assert bumped.low_stock_threshold == 10
    archived = client.archive_item(bumped.id, etag=bumped.etag)
    assert archived.status == "archived"

    loc = client.create_location(code="BIN-1", name="Bin 1")
    loc2 = client.update_location(loc.id, etag=loc.etag, name="Bin one")
    assert loc2.name == "Bin one"
    assert [x.code for x in client.iter_locations()] == ["BIN-1"]
    assert client.get_sandbox().id


def test_batch_and_caller_key(twh_client: twh.Client) -> None:
    client = twh_client
    mug, wh = _item_and_location(client)
    batch = client.create_movement_batch(
        [
            {"type": "receipt", "item_id": mug.id, "location_id": wh.id, "quantity": 5},
            {"type": "shipment", "item_id": mug.id, "location_id": wh.id, "quantity": 2},
        ]
    )
    assert [m.lines[0].quantity_after for m in batch] == [5, 3]
    first = client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=4, idempotency_key="po-77")
    again = client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=4, idempotency_key="po-77")
    assert first.id == again.id
    assert client.get_stock_level(item_id=mug.id, location_id=wh.id).quantity == 7


@pytest.mark.parametrize("action", ["error_after_commit", "drop_connection_after_commit"])
def test_fault_after_commit_gives_exactly_one_entry(twh_emulator: twh.Emulator, action: "twh.types.FaultAction") -> None:
    client = twh_emulator.create_sandbox()
    mug, wh = _item_and_location(client)
    twh_emulator.inject_fault(action, method="POST", path_prefix="/v1/stock-movements", times=1)
    movement = client.create_movement(type="receipt", item_id=mug.id, location_id=wh.id, quantity=10)
    ledger = list(client.iter_movements(item_id=mug.id))
    assert len(ledger) == 1, "exactly one ledger entry"
    assert ledger[0].id == movement.id
    assert client.get_stock_level(item_id=mug.id, location_id=wh.id).quantity == 10


def test_emulator_context_manager_and_clock() -> None:
    with twh.Emulator() as emu:
        assert emu.base_url.startswith("http://127.0.0.1:")
        client = emu.create_sandbox()
        assert client.base_url.rstrip("/") == emu.base_url.rstrip("/")
        t0 = emu.advance_clock(0)
        t1 = emu.advance_clock(3600)
        assert (t1 - t0).total_seconds() >= 3600
        assert emu.running
    assert not emu.running
    emu.stop()  # idempotent


def test_none_clears_a_clearable_field_and_not_given_keeps_it(twh_client: twh.Client) -> None:
    client = twh_client
    item = client.create_item(sku="CLEAR-1", name="Clear", low_stock_threshold=4)
    # Left out (NOT_GIVEN): kept.
    renamed = client.update_item(item.id, etag=item.etag, name="Renamed")
    assert renamed.low_stock_threshold == 4
    # None on a clearable field: sent as null, cleared.
    cleared = client.update_item(item.id, etag=renamed.etag, low_stock_threshold=None)
    assert cleared.low_stock_threshold is None and cleared.name == "Renamed"
    # None on a field that cannot be cleared: not sent, nothing changes but the version.
    same = client.update_item(item.id, etag=cleared.etag, name=None, low_stock_threshold=twh.NOT_GIVEN)
    assert same.name == "Renamed" and same.low_stock_threshold is None
    # Read-modify-write: a key the change answers with None is cleared too.
    restored = client.update_item_with(item.id, lambda cur: {"low_stock_threshold": 2})
    assert restored.low_stock_threshold == 2
    again = client.update_item_with(item.id, lambda cur: {"low_stock_threshold": None})
    assert again.low_stock_threshold is None

    ep = client.create_webhook_endpoint(
        url="http://127.0.0.1:9/hook", event_types=["*"], description="orders", retry_schedule_seconds=[1, 2]
    )
    kept = client.update_webhook_endpoint(ep.id, etag=ep.etag, enabled=False)
    assert kept.description == "orders" and kept.retry_schedule_seconds == [1, 2]
    cleared_ep = client.update_webhook_endpoint(ep.id, etag=kept.etag, description=None, retry_schedule_seconds=None)
    assert cleared_ep.description is None and cleared_ep.retry_schedule_seconds is None
    assert repr(twh.NOT_GIVEN) == "NOT_GIVEN" and not twh.NOT_GIVEN
