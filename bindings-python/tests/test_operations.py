"""Every SDK method the OpenAPI document describes exists on both clients.

The list is derived here from ``openapi/openapi.json`` with the rules of SDK.md "One operation
table", independently of the generator: a method's name is the operation's ``x-sdk-name``, else
its ``operationId``; operations tagged ``emulator`` are not SDK methods; an operation taking
``If-None-Match`` also has ``<name>_if_changed``, and one whose success answer is also offered as
``text/csv`` has ``<name>_csv``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

import twh

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
IF_NONE_MATCH = "#/components/parameters/IfNoneMatch"


def sdk_methods(doc: Dict[str, Any]) -> List[str]:
    names = []
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if "emulator" in op.get("tags", []):
                continue
            name = op.get("x-sdk-name") or op["operationId"]
            names.append(name)
            if any(p.get("$ref") == IF_NONE_MATCH for p in op.get("parameters", [])):
                names.append(f"{name}_if_changed")
            success = [r for code, r in op["responses"].items() if code.startswith("2")]
            if any("text/csv" in r.get("content", {}) for r in success):
                names.append(f"{name}_csv")
    return names


METHODS = sdk_methods(json.loads(DOCUMENT.read_text(encoding="utf-8")))


def test_the_document_names_the_methods_this_package_is_known_for() -> None:
    assert len(METHODS) == len(set(METHODS))
    for name in ("create_item", "create_movement", "create_job", "get_movement_if_changed",
                 "get_event_if_changed", "get_webhook_endpoint_if_changed", "get_invoice_csv"):
        assert name in METHODS, name


@pytest.mark.parametrize("cls", [twh.Client, twh.AsyncClient])
@pytest.mark.parametrize("name", METHODS)
def test_every_sdk_method_exists(cls: type, name: str) -> None:
    method = getattr(cls, name, None)
    assert callable(method), f"{cls.__name__}.{name} is missing"
    if name != "create_sandbox":  # a class method that makes a client (no key needed)
        assert inspect.iscoroutinefunction(method) == (cls is twh.AsyncClient), name
