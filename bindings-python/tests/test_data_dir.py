"""`Emulator(data_dir=...)`: the state outlives the emulator, and one directory has one owner."""

from __future__ import annotations

from pathlib import Path

import pytest

import twh


def test_the_state_survives_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    with twh.Emulator(data_dir=tmp_path) as emu:
        client, details = emu.create_sandbox_with_details()
        item = client.create_item(sku="DUR-1", name="Durable")
        wh = client.create_location(code="DUR-WH", name="Durable warehouse")
        client.create_movement(
            type="receipt", item_id=item.id, location_id=wh.id, quantity=7, idempotency_key="dur-receipt-1"
        )
        # A second emulator on the same directory is refused while the first holds it.
        with pytest.raises(twh.TWHError) as e:
            twh.Emulator(data_dir=tmp_path)
        assert "twh.lock" in str(e.value)

    with twh.Emulator(data_dir=str(tmp_path)) as emu:
        again = twh.Client(api_key=details.secret_key, base_url=emu.base_url)
        level = again.get_stock_level(item_id=item.id, location_id=wh.id)
        assert (level.quantity, level.version) == (7, 1)
        assert again.get_item(item.id).sku == "DUR-1"
        # The idempotency record came back too: the same key replays, adding nothing.
        replay = again.create_movement(
            type="receipt", item_id=item.id, location_id=wh.id, quantity=7, idempotency_key="dur-receipt-1"
        )
        assert len(list(again.iter_movements(item_id=item.id))) == 1
        assert replay.lines[0].quantity_after == 7


def test_an_emulator_without_data_dir_keeps_nothing(tmp_path: Path) -> None:
    with twh.Emulator() as emu:
        emu.create_sandbox().create_item(sku="MEM-1", name="In memory")
    assert list(tmp_path.iterdir()) == []


def test_emulator_options_reach_the_emulator() -> None:
    with twh.Emulator(free_quotas={"ledger_lines": 2}, webhook_timeout_ms=500) as emu:
        client = emu.create_sandbox()
        item = client.create_item(sku="Q-1", name="Quota")
        wh = client.create_location(code="Q-WH", name="Quota warehouse")
        client.create_movement(type="receipt", item_id=item.id, location_id=wh.id, quantity=1)
        client.create_movement(type="receipt", item_id=item.id, location_id=wh.id, quantity=1)
        with pytest.raises(twh.QuotaExceededError):
            client.create_movement(type="receipt", item_id=item.id, location_id=wh.id, quantity=1)
    with pytest.raises(twh.InvalidRequestError):
        twh.Emulator(free_quotas={"lines": 1})  # type: ignore[dict-item]
    with pytest.raises(twh.InvalidRequestError):
        twh.Emulator(webhook_timeout_ms=0)
