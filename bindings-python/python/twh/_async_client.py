"""`AsyncClient` (asyncio): every SDK operation, snake_case, keyword arguments, typed results.

This file is the source of both clients: ``generate.py`` writes ``_sync_client.py`` (the blocking
``Client``) from it by dropping ``async`` and ``await``. Edit this one, then run
``python3 bindings-python/generate.py``.

Both wrap the Rust SDK's ``twh::Client`` (``twh._native.Client``), which does the retries,
idempotency keys, ETags and error mapping; this module only shapes arguments and results.
The asyncio client's calls are awaitables resolved from the Rust runtime (no thread per call).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, AsyncIterator, Callable, Dict, List, Literal, Optional, Tuple, Type

from . import _native
from ._errors import PreconditionFailedError
from ._transport import M, Page, _AsyncTransport, _clean, _maybe_versioned, _models, _next_cursor, _page, _plain, _versioned
from .params import ItemChanges, LocationChanges, MovementParams
from .types import (
    ApiKeyRolled,
    DeliveryStatus,
    Event,
    Invoice,
    Item,
    Job,
    Location,
    LocationKind,
    Movement,
    MovementType,
    Plan,
    PlanInfo,
    Reconciliation,
    ReplayCount,
    Sandbox,
    SandboxCreated,
    Status,
    StockLevel,
    Subscription,
    UsageExport,
    UsageReport,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = ["AsyncClient", "READ_MODIFY_WRITE_ATTEMPTS_MAX"]

#: Most rounds of ``update_item_with``/``update_location_with`` before the last 412 is raised
#: (the Rust SDK's bound).
READ_MODIFY_WRITE_ATTEMPTS_MAX = 10


class AsyncClient(_AsyncTransport):
    """A TWH API client (asyncio). Safe to share between tasks and threads.

    ``api_key`` defaults to ``TWH_API_KEY``, ``base_url`` to ``TWH_BASE_URL``; ``timeout``
    (seconds per attempt, default 30) and ``max_retries`` (default 3) as in SDK.md. A missing
    key or a malformed URL raises :class:`twh.ConfigurationError` here, not at the first call.
    """

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> None:
        self._native = _native.Client(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            user_agent_suffix=user_agent_suffix,
        )

    @classmethod
    async def create_sandbox(
        cls,
        *,
        base_url: Optional[str] = None,
        admin_token: Optional[str] = None,
        name: Optional[str] = None,
        plan: Optional[Plan] = None,
        seed: Optional[Literal["demo", "empty"]] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> Tuple["AsyncClient", SandboxCreated]:
        """Creates a sandbox on the server at ``base_url`` (else ``TWH_BASE_URL``) and answers a
        client with its secret key, and its details (both keys, shown only now). A local
        emulator needs no key; where an admin token is required, pass it as ``admin_token``
        (else ``TWH_API_KEY`` is sent)."""
        request = _clean({"name": name, "plan": plan, "seed": seed})
        config = {
            "api_key": admin_token,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "user_agent_suffix": user_agent_suffix,
        }
        native, created = await cls._create_sandbox(request, config)
        return cls._wrap(native), created

    @classmethod
    def _wrap(cls, native: "_native.Client") -> "AsyncClient":
        self = cls.__new__(cls)
        self._native = native
        return self

    def with_api_key(self, api_key: str) -> "AsyncClient":
        """The same client with another API key (after :meth:`roll_api_key`, or a restricted key)."""
        return AsyncClient._wrap(self._native.with_api_key(api_key))

    async def close(self) -> None:
        """Nothing to release (connections are pooled by the process); for symmetry."""

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"twh.AsyncClient(base_url={self.base_url!r})"

    async def _apaginate(self, op: str, cls: Type[M], args: Dict[str, Any]) -> AsyncIterator[M]:
        args = dict(args)
        cursor: Optional[str] = args.get("cursor")
        pages = 0
        while True:
            page = _page(cls, await self._call(op, args))
            pages += 1
            for result in page.data:
                yield result
            cursor = _next_cursor(page, cursor, pages)
            if cursor is None:
                return
            args["cursor"] = cursor

    # ----------------------------------------------------------------------------------------
    # Sandboxes and keys

    async def get_sandbox(self) -> Sandbox:
        """This client's sandbox."""
        return _plain(Sandbox, await self._call("get_sandbox", {}))

    async def reset_sandbox(self, *, idempotency_key: Optional[str] = None) -> Sandbox:
        """Empties this client's sandbox, keeping its keys."""
        return _plain(Sandbox, await self._call("reset_sandbox", _clean({"idempotency_key": idempotency_key})))

    async def delete_sandbox(self) -> None:
        """Deletes this client's sandbox and everything in it; its keys stop working."""
        await self._call("delete_sandbox", {})

    async def roll_api_key(self, *, idempotency_key: Optional[str] = None) -> ApiKeyRolled:
        """Issues a new secret key; this client's keeps working for a grace period (24 h of
        emulator time by default). Switch with :meth:`with_api_key`."""
        return _plain(ApiKeyRolled, await self._call("roll_api_key", _clean({"idempotency_key": idempotency_key})))

    # ----------------------------------------------------------------------------------------
    # Items

    async def create_item(
        self,
        *,
        sku: str,
        name: str,
        unit: Optional[str] = None,
        low_stock_threshold: Optional[int] = None,
        attributes: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Item:
        """Creates an item. A taken SKU raises :class:`twh.ConflictError` ``sku_taken``."""
        body = _clean(
            {"sku": sku, "name": name, "unit": unit, "low_stock_threshold": low_stock_threshold, "attributes": attributes}
        )
        return _versioned(Item, await self._call("create_item", _clean({"body": body, "idempotency_key": idempotency_key})))

    async def get_item(self, id: str) -> Item:
        """Reads an item with its ``etag``."""
        return _versioned(Item, await self._call("get_item", {"id": id}))

    async def get_item_if_changed(self, id: str, *, etag: Optional[str]) -> Optional[Item]:
        """Reads an item unless it still has ``etag`` (then ``None``: yours is current)."""
        return _maybe_versioned(Item, await self._call("get_item_if_changed", {"id": id, "etag": etag}))

    async def update_item(
        self,
        id: str,
        *,
        etag: Optional[str],
        sku: Optional[str] = None,
        name: Optional[str] = None,
        unit: Optional[str] = None,
        attributes: Optional[Dict[str, Any]] = None,
        low_stock_threshold: Optional[int] = None,
    ) -> Item:
        """Changes an item if it still has ``etag`` (required; a stale one raises
        :class:`twh.PreconditionFailedError`). Arguments left at ``None`` are not changed."""
        body = _clean(
            {"sku": sku, "name": name, "unit": unit, "attributes": attributes, "low_stock_threshold": low_stock_threshold}
        )
        return _versioned(Item, await self._call("update_item", {"id": id, "etag": etag, "body": body}))

    async def update_item_with(
        self,
        id: str,
        change: Callable[[Item], ItemChanges],
        *,
        attempts_max: int = READ_MODIFY_WRITE_ATTEMPTS_MAX,
    ) -> Item:
        """Read-modify-write: reads the item, applies ``change`` (answering the fields to set),
        writes with ``If-Match``; on 412 reads again and re-applies, at most ``attempts_max``
        rounds, then raises the last :class:`twh.PreconditionFailedError`. ``change`` may run
        more than once: compute the change from its argument alone."""
        if attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        for attempt in range(1, attempts_max + 1):
            current = await self.get_item(id)
            try:
                return await self.update_item(id, etag=current.etag, **change(current))
            except PreconditionFailedError:
                if attempt == attempts_max:
                    raise
            await self._conflict_pause(attempt)
        raise AssertionError("unreachable")

    async def archive_item(self, id: str, *, etag: Optional[str]) -> Item:
        """Archives an item if it still has ``etag``: it stays readable with ``status:
        archived``; new movements for it raise :class:`twh.ConflictError` ``item_archived``."""
        return _versioned(Item, await self._call("archive_item", {"id": id, "etag": etag}))

    async def list_items(
        self,
        *,
        sku: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[Status] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Item]:
        """One page of items (``q``: case-insensitive substring of SKU or name)."""
        args = _clean({"sku": sku, "q": q, "status": status, "limit": limit, "cursor": cursor})
        return _page(Item, await self._call("list_items", args))

    def iter_items(
        self,
        *,
        sku: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[Status] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[Item]:
        """Every item matching the filters, page after page (``limit`` is the page size)."""
        args = _clean({"sku": sku, "q": q, "status": status, "limit": limit, "cursor": cursor})
        return self._apaginate("list_items", Item, args)

    # ----------------------------------------------------------------------------------------
    # Locations

    async def create_location(
        self,
        *,
        code: str,
        name: str,
        kind: Optional[LocationKind] = None,
        idempotency_key: Optional[str] = None,
    ) -> Location:
        """Creates a location. A taken code raises :class:`twh.ConflictError` ``code_taken``."""
        body = _clean({"code": code, "name": name, "kind": kind})
        return _versioned(
            Location, await self._call("create_location", _clean({"body": body, "idempotency_key": idempotency_key}))
        )

    async def get_location(self, id: str) -> Location:
        """Reads a location with its ``etag``."""
        return _versioned(Location, await self._call("get_location", {"id": id}))

    async def get_location_if_changed(self, id: str, *, etag: Optional[str]) -> Optional[Location]:
        """Reads a location unless it still has ``etag`` (then ``None``: yours is current)."""
        return _maybe_versioned(Location, await self._call("get_location_if_changed", {"id": id, "etag": etag}))

    async def update_location(
        self,
        id: str,
        *,
        etag: Optional[str],
        code: Optional[str] = None,
        name: Optional[str] = None,
        kind: Optional[LocationKind] = None,
    ) -> Location:
        """Changes a location if it still has ``etag`` (required; a stale one raises
        :class:`twh.PreconditionFailedError`)."""
        body = _clean({"code": code, "name": name, "kind": kind})
        return _versioned(Location, await self._call("update_location", {"id": id, "etag": etag, "body": body}))

    async def update_location_with(
        self,
        id: str,
        change: Callable[[Location], LocationChanges],
        *,
        attempts_max: int = READ_MODIFY_WRITE_ATTEMPTS_MAX,
    ) -> Location:
        """Read-modify-write of a location, as :meth:`update_item_with`."""
        if attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        for attempt in range(1, attempts_max + 1):
            current = await self.get_location(id)
            try:
                return await self.update_location(id, etag=current.etag, **change(current))
            except PreconditionFailedError:
                if attempt == attempts_max:
                    raise
            await self._conflict_pause(attempt)
        raise AssertionError("unreachable")

    async def archive_location(self, id: str, *, etag: Optional[str]) -> Location:
        """Archives a location if it still has ``etag``; new movements at it raise
        :class:`twh.ConflictError` ``location_archived``."""
        return _versioned(Location, await self._call("archive_location", {"id": id, "etag": etag}))

    async def list_locations(
        self,
        *,
        code: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[Status] = None,
        kind: Optional[LocationKind] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Location]:
        """One page of locations."""
        args = _clean({"code": code, "q": q, "status": status, "kind": kind, "limit": limit, "cursor": cursor})
        return _page(Location, await self._call("list_locations", args))

    def iter_locations(
        self,
        *,
        code: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[Status] = None,
        kind: Optional[LocationKind] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[Location]:
        """Every location matching the filters, page after page."""
        args = _clean({"code": code, "q": q, "status": status, "kind": kind, "limit": limit, "cursor": cursor})
        return self._apaginate("list_locations", Location, args)

    # ----------------------------------------------------------------------------------------
    # Stock movements: the ledger

    async def create_movement(
        self,
        *,
        type: MovementType,
        item_id: str,
        quantity: int,
        location_id: Optional[str] = None,
        from_location_id: Optional[str] = None,
        to_location_id: Optional[str] = None,
        reference: Optional[str] = None,
        reason: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        allow_negative: Optional[bool] = None,
        if_match: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Movement:
        """Records a movement: ``receipt``, ``shipment`` (``quantity`` > 0), ``adjustment``
        (signed), or ``transfer`` (``from_location_id`` → ``to_location_id``).

        With ``if_match`` (a stock level's ``etag``) it is written only if that level is
        unchanged, else :class:`twh.PreconditionFailedError`. Its ``etag`` is the new level's.
        One ``idempotency_key`` (yours, or one made for this call) is sent on every retry."""
        body = _clean(
            {
                "type": type,
                "item_id": item_id,
                "quantity": quantity,
                "location_id": location_id,
                "from_location_id": from_location_id,
                "to_location_id": to_location_id,
                "reference": reference,
                "reason": reason,
                "metadata": metadata,
                "allow_negative": allow_negative,
            }
        )
        args = _clean({"body": body, "if_match": if_match, "idempotency_key": idempotency_key})
        return _versioned(Movement, await self._call("create_movement", args))

    async def create_movement_batch(
        self, movements: List[MovementParams], *, idempotency_key: Optional[str] = None
    ) -> List[Movement]:
        """Records 1..=1000 movements in one call, all or nothing (an error names the failing
        entry, like ``movements[3].quantity``)."""
        args = _clean({"movements": [_clean(dict(m)) for m in movements], "idempotency_key": idempotency_key})
        return _models(Movement, await self._call("create_movement_batch", args))

    async def reverse_movement(
        self,
        id: str,
        *,
        reason: Optional[str] = None,
        allow_negative: Optional[bool] = None,
        idempotency_key: Optional[str] = None,
    ) -> Movement:
        """Records the movement that undoes ``id`` (``reverses`` names it); a second reversal
        raises :class:`twh.ConflictError` ``already_reversed``."""
        body = _clean({"reason": reason, "allow_negative": allow_negative})
        args = _clean({"id": id, "body": body, "idempotency_key": idempotency_key})
        return _versioned(Movement, await self._call("reverse_movement", args))

    async def get_movement(self, id: str) -> Movement:
        """Reads a movement."""
        return _versioned(Movement, await self._call("get_movement", {"id": id}))

    async def list_movements(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        type: Optional[MovementType] = None,
        after_sequence: Optional[int] = None,
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Movement]:
        """One page of the ledger, in commit order."""
        args = _clean(
            {
                "item_id": item_id,
                "location_id": location_id,
                "type": type,
                "after_sequence": after_sequence,
                "created_after": created_after,
                "created_before": created_before,
                "limit": limit,
                "cursor": cursor,
            }
        )
        return _page(Movement, await self._call("list_movements", args))

    def iter_movements(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        type: Optional[MovementType] = None,
        after_sequence: Optional[int] = None,
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[Movement]:
        """The ledger, page after page."""
        args = _clean(
            {
                "item_id": item_id,
                "location_id": location_id,
                "type": type,
                "after_sequence": after_sequence,
                "created_after": created_after,
                "created_before": created_before,
                "limit": limit,
                "cursor": cursor,
            }
        )
        return self._apaginate("list_movements", Movement, args)

    # ----------------------------------------------------------------------------------------
    # Stock levels

    async def get_stock_level(
        self, *, item_id: str, location_id: str, as_of: Optional[_dt.datetime] = None
    ) -> StockLevel:
        """The level of an item at a location with its ``etag`` (for a conditional movement);
        with ``as_of``, as the ledger had it then (emulator clock). Never moved: quantity 0."""
        args = _clean({"item_id": item_id, "location_id": location_id, "as_of": as_of})
        return _versioned(StockLevel, await self._call("get_stock_level", args))

    async def get_stock_level_if_changed(
        self, *, item_id: str, location_id: str, etag: Optional[str]
    ) -> Optional[StockLevel]:
        """Reads the level unless it still has ``etag`` (then ``None``: yours is current)."""
        args = {"item_id": item_id, "location_id": location_id, "etag": etag}
        return _maybe_versioned(StockLevel, await self._call("get_stock_level_if_changed", args))

    async def list_stock_levels(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        below_threshold: Optional[bool] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[StockLevel]:
        """One page of stock levels."""
        args = _clean(
            {
                "item_id": item_id,
                "location_id": location_id,
                "below_threshold": below_threshold,
                "limit": limit,
                "cursor": cursor,
            }
        )
        return _page(StockLevel, await self._call("list_stock_levels", args))

    def iter_stock_levels(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        below_threshold: Optional[bool] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[StockLevel]:
        """Every stock level matching the filters, page after page."""
        args = _clean(
            {
                "item_id": item_id,
                "location_id": location_id,
                "below_threshold": below_threshold,
                "limit": limit,
                "cursor": cursor,
            }
        )
        return self._apaginate("list_stock_levels", StockLevel, args)

    # ----------------------------------------------------------------------------------------
    # Events

    async def get_event(self, id: str) -> Event:
        """Reads an event."""
        return _versioned(Event, await self._call("get_event", {"id": id}))

    async def list_events(
        self,
        *,
        type: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Event]:
        """One page of events (``type`` like ``stock_movement.created``; ``after`` an event id)."""
        args = _clean({"type": type, "after": after, "limit": limit, "cursor": cursor})
        return _page(Event, await self._call("list_events", args))

    def iter_events(
        self,
        *,
        type: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[Event]:
        """Every event matching the filters, page after page."""
        args = _clean({"type": type, "after": after, "limit": limit, "cursor": cursor})
        return self._apaginate("list_events", Event, args)

    # ----------------------------------------------------------------------------------------
    # Webhook endpoints

    async def create_webhook_endpoint(
        self,
        *,
        url: str,
        event_types: List[str],
        description: Optional[str] = None,
        retry_schedule_seconds: Optional[List[int]] = None,
        idempotency_key: Optional[str] = None,
    ) -> WebhookEndpoint:
        """Registers an endpoint for ``event_types`` (``["*"]`` for all); the answer carries its
        signing ``secret`` (``whsec_…``) for :func:`twh.webhooks.verify`.
        ``retry_schedule_seconds`` replaces the default retry delays for this endpoint."""
        body = _clean(
            {
                "url": url,
                "event_types": event_types,
                "description": description,
                "retry_schedule_seconds": retry_schedule_seconds,
            }
        )
        args = _clean({"body": body, "idempotency_key": idempotency_key})
        return _versioned(WebhookEndpoint, await self._call("create_webhook_endpoint", args))

    async def get_webhook_endpoint(self, id: str) -> WebhookEndpoint:
        """Reads an endpoint with its ``etag``."""
        return _versioned(WebhookEndpoint, await self._call("get_webhook_endpoint", {"id": id}))

    async def update_webhook_endpoint(
        self,
        id: str,
        *,
        etag: Optional[str],
        url: Optional[str] = None,
        event_types: Optional[List[str]] = None,
        description: Optional[str] = None,
        enabled: Optional[bool] = None,
        retry_schedule_seconds: Optional[List[int]] = None,
    ) -> WebhookEndpoint:
        """Changes an endpoint if it still has ``etag``."""
        body = _clean(
            {
                "url": url,
                "event_types": event_types,
                "description": description,
                "enabled": enabled,
                "retry_schedule_seconds": retry_schedule_seconds,
            }
        )
        args = {"id": id, "etag": etag, "body": body}
        return _versioned(WebhookEndpoint, await self._call("update_webhook_endpoint", args))

    async def delete_webhook_endpoint(self, id: str, *, etag: Optional[str]) -> None:
        """Deletes an endpoint if it still has ``etag``."""
        await self._call("delete_webhook_endpoint", {"id": id, "etag": etag})

    async def rotate_webhook_secret(self, id: str, *, idempotency_key: Optional[str] = None) -> WebhookEndpoint:
        """Issues a new signing secret; the old one also signs for 24 h, so deliveries carry two
        signatures meanwhile."""
        args = _clean({"id": id, "idempotency_key": idempotency_key})
        return _versioned(WebhookEndpoint, await self._call("rotate_webhook_secret", args))

    async def test_webhook_endpoint(self, id: str, *, idempotency_key: Optional[str] = None) -> WebhookDelivery:
        """Sends a ``ping`` event to the endpoint now; answers its delivery."""
        args = _clean({"id": id, "idempotency_key": idempotency_key})
        return _plain(WebhookDelivery, await self._call("test_webhook_endpoint", args))

    async def replay_webhook_endpoint(
        self,
        id: str,
        *,
        status: DeliveryStatus = "dead",
        since: Optional[_dt.datetime] = None,
        until: Optional[_dt.datetime] = None,
        idempotency_key: Optional[str] = None,
    ) -> ReplayCount:
        """Re-queues the endpoint's dead deliveries (created within ``since``..``until``);
        answers how many."""
        body = _clean({"status": status, "since": since, "until": until})
        args = _clean({"id": id, "body": body, "idempotency_key": idempotency_key})
        return _plain(ReplayCount, await self._call("replay_webhook_endpoint", args))

    async def list_webhook_endpoints(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[WebhookEndpoint]:
        """One page of endpoints."""
        args = _clean({"limit": limit, "cursor": cursor})
        return _page(WebhookEndpoint, await self._call("list_webhook_endpoints", args))

    def iter_webhook_endpoints(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> AsyncIterator[WebhookEndpoint]:
        """Every endpoint, page after page."""
        return self._apaginate("list_webhook_endpoints", WebhookEndpoint, _clean({"limit": limit, "cursor": cursor}))

    # ----------------------------------------------------------------------------------------
    # Webhook deliveries

    async def get_webhook_delivery(self, id: str) -> WebhookDelivery:
        """Reads a delivery with its attempts."""
        return _plain(WebhookDelivery, await self._call("get_webhook_delivery", {"id": id}))

    async def replay_webhook_delivery(self, id: str, *, idempotency_key: Optional[str] = None) -> WebhookDelivery:
        """Sends a delivery again now (a ``dead`` one too)."""
        args = _clean({"id": id, "idempotency_key": idempotency_key})
        return _plain(WebhookDelivery, await self._call("replay_webhook_delivery", args))

    async def list_webhook_deliveries(
        self,
        *,
        endpoint_id: Optional[str] = None,
        event_id: Optional[str] = None,
        status: Optional[DeliveryStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[WebhookDelivery]:
        """One page of deliveries."""
        args = _clean(
            {"endpoint_id": endpoint_id, "event_id": event_id, "status": status, "limit": limit, "cursor": cursor}
        )
        return _page(WebhookDelivery, await self._call("list_webhook_deliveries", args))

    def iter_webhook_deliveries(
        self,
        *,
        endpoint_id: Optional[str] = None,
        event_id: Optional[str] = None,
        status: Optional[DeliveryStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[WebhookDelivery]:
        """Every delivery matching the filters, page after page."""
        args = _clean(
            {"endpoint_id": endpoint_id, "event_id": event_id, "status": status, "limit": limit, "cursor": cursor}
        )
        return self._apaginate("list_webhook_deliveries", WebhookDelivery, args)

    # ----------------------------------------------------------------------------------------
    # Plans, subscription, usage and invoices

    async def list_plans(self) -> List[PlanInfo]:
        """The plans (``free``: hard quotas; ``pro``: higher quotas, overage billed)."""
        return _models(PlanInfo, await self._call("list_plans", {}))

    async def get_subscription(self) -> Subscription:
        """This sandbox's plan and current billing period."""
        return _plain(Subscription, await self._call("get_subscription", {}))

    async def update_subscription(self, plan: Plan, *, idempotency_key: Optional[str] = None) -> Subscription:
        """Changes the plan; its quotas apply at once."""
        args = _clean({"plan": plan, "idempotency_key": idempotency_key})
        return _plain(Subscription, await self._call("update_subscription", args))

    async def get_usage(self, *, period: Optional[str] = None) -> UsageReport:
        """Usage of each meter in ``period`` (``current``, the default, or ``YYYY-MM``)."""
        return _plain(UsageReport, await self._call("get_usage", _clean({"period": period})))

    async def export_usage(self, *, period: Optional[str] = None) -> UsageExport:
        """Every metered unit group of ``period``, with time and request id."""
        return _plain(UsageExport, await self._call("export_usage", _clean({"period": period})))

    async def export_usage_csv(self, *, period: Optional[str] = None) -> str:
        """:meth:`export_usage` as CSV text."""
        return str(await self._call("export_usage_csv", _clean({"period": period})))

    async def list_invoices(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Invoice]:
        """One page of invoices (one per ended billing period)."""
        return _page(Invoice, await self._call("list_invoices", _clean({"limit": limit, "cursor": cursor})))

    def iter_invoices(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> AsyncIterator[Invoice]:
        """Every invoice, page after page."""
        return self._apaginate("list_invoices", Invoice, _clean({"limit": limit, "cursor": cursor}))

    async def get_invoice(self, id: str) -> Invoice:
        """Reads an invoice."""
        return _plain(Invoice, await self._call("get_invoice", {"id": id}))

    async def get_invoice_csv(self, id: str) -> str:
        """An invoice as CSV text."""
        return str(await self._call("get_invoice_csv", {"id": id}))

    # ----------------------------------------------------------------------------------------
    # Reconciliations and jobs

    async def create_reconciliation(
        self, *, location_id: Optional[str] = None, idempotency_key: Optional[str] = None
    ) -> Reconciliation:
        """Recomputes every level (of ``location_id``, or all) from the ledger and compares it
        with the snapshot; answers the completed run with its discrepancies."""
        args = _clean({"body": _clean({"location_id": location_id}), "idempotency_key": idempotency_key})
        return _plain(Reconciliation, await self._call("create_reconciliation", args))

    async def get_reconciliation(self, id: str) -> Reconciliation:
        """Reads a reconciliation run."""
        return _plain(Reconciliation, await self._call("get_reconciliation", {"id": id}))

    async def get_reconciliation_csv(self, id: str) -> str:
        """A reconciliation's discrepancies as CSV text."""
        return str(await self._call("get_reconciliation_csv", {"id": id}))

    async def list_reconciliations(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Reconciliation]:
        """One page of reconciliation runs."""
        args = _clean({"limit": limit, "cursor": cursor})
        return _page(Reconciliation, await self._call("list_reconciliations", args))

    def iter_reconciliations(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> AsyncIterator[Reconciliation]:
        """Every reconciliation run, page after page."""
        return self._apaginate("list_reconciliations", Reconciliation, _clean({"limit": limit, "cursor": cursor}))

    async def import_movements_csv(self, data: str, *, idempotency_key: Optional[str] = None) -> Job:
        """Starts an ``import_movements`` job of CSV text (header
        ``type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason``;
        unused columns may be absent; a row's ``reference`` makes it idempotent). Poll it with
        :meth:`get_job`; bad rows are reported by line number (the header is line 1)."""
        body = {"type": "import_movements", "format": "csv", "data": data}
        return _plain(Job, await self._call("create_job", _clean({"body": body, "idempotency_key": idempotency_key})))

    async def get_job(self, id: str) -> Job:
        """Reads a job: status, progress and the errors of bad rows."""
        return _plain(Job, await self._call("get_job", {"id": id}))
