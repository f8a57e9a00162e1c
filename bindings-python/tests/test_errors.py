"""Errors arrive as the exception classes of SDK.md, with status, code and request id."""

from __future__ import annotations

import pytest

import twh


def test_conflict_sku_taken(twh_client: twh.Client) -> None:
    twh_client.create_item(sku="TEA-1", name="Tea")
    with pytest.raises(twh.ConflictError) as e:
        twh_client.create_item(sku="TEA-1", name="Tea again")
    err = e.value
    assert isinstance(err, twh.APIStatusError) and isinstance(err, twh.TWHError)
    assert (err.status, err.code) == (409, "sku_taken")
    assert err.request_id
    assert err.attempts == 1


def test_insufficient_stock(twh_client: twh.Client) -> None:
    mug = twh_client.create_item(sku="MUG", name="Mug")
    wh = twh_client.create_location(code="WH", name="WH")
    with pytest.raises(twh.ConflictError) as e:
        twh_client.create_movement(type="shipment", item_id=mug.id, location_id=wh.id, quantity=1)
    assert e.value.code == "insufficient_stock"
    assert list(twh_client.iter_movements(item_id=mug.id)) == []


def test_not_found_and_validation(twh_client: twh.Client) -> None:
    with pytest.raises(twh.NotFoundError) as e:
        twh_client.get_item("item_doesnotexist")
    assert e.value.status == 404
    with pytest.raises((twh.ValidationError, twh.InvalidRequestError)):
        twh_client.create_item(sku="", name="Empty SKU")


def test_authentication(twh_emulator: twh.Emulator) -> None:
    client = twh.Client(api_key="sk_test_wrong", base_url=twh_emulator.base_url, max_retries=0)
    with pytest.raises(twh.AuthenticationError) as e:
        client.list_items()
    assert e.value.status == 401


def test_restricted_key_may_not_write(twh_emulator: twh.Emulator) -> None:
    _, details = twh_emulator.create_sandbox_with_details()
    reader = twh.Client(api_key=details.restricted_key, base_url=twh_emulator.base_url)
    assert reader.list_items().data == []
    with pytest.raises(twh.PermissionDeniedError) as e:
        reader.create_item(sku="X", name="X")
    assert e.value.status == 403


def test_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWH_API_KEY", raising=False)
    with pytest.raises(twh.ConfigurationError):
        twh.Client(base_url="http://127.0.0.1:1")


def test_server_error_after_retries(twh_emulator: twh.Emulator) -> None:
    client = twh.Client(api_key=twh_emulator.create_sandbox_with_details()[1].secret_key, base_url=twh_emulator.base_url, max_retries=1)
    twh_emulator.inject_fault("error_before_commit", method="GET", path_prefix="/v1/items", times=5, status=503)
    try:
        with pytest.raises(twh.ServerError) as e:
            client.list_items()
        assert e.value.status == 503 and e.value.attempts == 2
    finally:
        twh_emulator.clear_faults()
