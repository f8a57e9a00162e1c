"""Results are forward compatible: a field newer than this package is kept, an enum value it does
not know reads as its plain string (SDK.md "One operation table")."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict

from _support import Receiver

import twh

ITEM: Dict[str, Any] = {
    "id": "itm_1",
    "sku": "MUG",
    "name": "Mug",
    "unit": "each",
    "attributes": {},
    "low_stock_threshold": None,
    "status": "discontinued",  # not a Status this package knows
    "version": 3,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "carbon_grams": 250,  # a field newer than this package
}


def test_an_unknown_field_and_enum_value_are_read() -> None:
    receiver = Receiver()
    body = json.dumps(ITEM).encode()
    receiver.answer["/v1/items/itm_1"] = (200, {"Content-Type": "application/json", "ETag": '"3"'}, body)
    try:
        item = twh.Client(api_key="sk_test_fc", base_url=receiver.url, max_retries=0).get_item("itm_1")
        status: str = item.status  # typed with the values this package knows; read as sent
        assert status == "discontinued"
        assert item["carbon_grams"] == 250 and "carbon_grams" in item
        assert item.to_dict() == ITEM
        assert item.etag == '"3"' and item.sku == "MUG" and item.version == 3
        again = asyncio.run(twh.AsyncClient(api_key="sk_test_fc", base_url=receiver.url).get_item("itm_1"))
        assert again.to_dict()["carbon_grams"] == 250 and again["status"] == "discontinued"
    finally:
        receiver.close()


def test_attributes_are_only_the_declared_fields() -> None:
    item = twh.types.Item(dict(ITEM))
    try:
        item.skuu  # type: ignore[attr-defined]
    except AttributeError:
        pass
    else:
        raise AssertionError("a misspelt attribute must raise")
