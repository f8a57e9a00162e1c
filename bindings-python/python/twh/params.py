"""Typed arguments that are dictionaries: a movement of a batch, and the changes a
``update_*_with`` function answers."""

from __future__ import annotations

from typing import Any, Dict, List, TypedDict

from .types import LocationKind, MovementType

__all__ = ["MovementParams", "ItemChanges", "LocationChanges", "WebhookEndpointChanges"]


class _MovementRequired(TypedDict):
    type: MovementType
    item_id: str
    quantity: int


class MovementParams(_MovementRequired, total=False):
    """One movement of :meth:`twh.Client.create_movement_batch` (the fields of
    :meth:`twh.Client.create_movement`)."""

    location_id: str
    from_location_id: str
    to_location_id: str
    reference: str
    reason: str
    metadata: Dict[str, Any]
    allow_negative: bool


class ItemChanges(TypedDict, total=False):
    """What :meth:`twh.Client.update_item_with`'s function answers: the fields to set."""

    sku: str
    name: str
    unit: str
    attributes: Dict[str, Any]
    low_stock_threshold: int


class LocationChanges(TypedDict, total=False):
    """What :meth:`twh.Client.update_location_with`'s function answers: the fields to set."""

    code: str
    name: str
    kind: LocationKind


class WebhookEndpointChanges(TypedDict, total=False):
    """Fields of :meth:`twh.Client.update_webhook_endpoint`."""

    url: str
    event_types: List[str]
    description: str
    enabled: bool
    retry_schedule_seconds: List[int]
