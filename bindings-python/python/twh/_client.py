"""`Client` (blocking) and `AsyncClient` (asyncio): every SDK operation, snake_case, keyword
arguments. Both wrap the Rust SDK's `twh::Client` (`twh._native.Client`), which does the
retries, idempotency keys, ETags and error mapping; this module only shapes arguments and
results.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import json
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, TypeVar

from . import _native
from ._models import Model

__all__ = ["Client", "AsyncClient", "Page"]

T = TypeVar("T")


def _default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, Model):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(fields: Dict[str, Any]) -> Dict[str, Any]:
    """Drops arguments left at ``None`` (not sent)."""
    return {k: v for k, v in fields.items() if v is not None}


class Page:
    """One page of a list: ``data`` (results) and ``next_cursor`` (``None`` on the last)."""

    __slots__ = ("data", "next_cursor")

    def __init__(self, data: List[Model], next_cursor: Optional[str]) -> None:
        self.data = data
        self.next_cursor = next_cursor

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def to_dict(self) -> Dict[str, Any]:
        return {"data": [m.to_dict() for m in self.data], "next_cursor": self.next_cursor}

    def __repr__(self) -> str:
        return f"Page(len={len(self.data)}, next_cursor={self.next_cursor!r})"


def _shape(op: str, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, dict) and set(raw) == {"value", "etag"}:
        return Model(raw["value"], etag=raw["etag"])
    if isinstance(raw, dict) and set(raw) == {"data", "next_cursor"}:
        return Page([Model(d) for d in raw["data"]], raw["next_cursor"])
    if isinstance(raw, list):
        return [Model(d) for d in raw]
    if isinstance(raw, dict):
        return Model(raw)
    return raw


def _native_client(
    api_key: Optional[str],
    base_url: Optional[str],
    timeout: Optional[float],
    max_retries: Optional[int],
    user_agent_suffix: Optional[str],
) -> "_native.Client":
    return _native.Client(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        user_agent_suffix=user_agent_suffix,
    )


class _Base:
    _native: "_native.Client"

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._native.base_url

    def _invoke(self, op: str, args: Dict[str, Any]) -> Any:
        answer = self._native.call(op, json.dumps(args, default=_default))
        return _shape(op, json.loads(answer))


class Client(_Base):
    """A TWH API client (blocking). Safe to share between threads.

    ``api_key`` defaults to ``TWH_API_KEY``, ``base_url`` to ``TWH_BASE_URL``; ``timeout``
    (seconds per attempt, default 30) and ``max_retries`` (default 3) as in SDK.md.
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
        self._native = _native_client(api_key, base_url, timeout, max_retries, user_agent_suffix)

    @classmethod
    def _wrap(cls, native: "_native.Client") -> "Client":
        self = cls.__new__(cls)
        self._native = native
        return self

    def with_api_key(self, api_key: str) -> "Client":
        """The same client with another API key."""
        return Client._wrap(self._native.with_api_key(api_key))

    def close(self) -> None:
        """Nothing to release (connections are pooled by the process); for symmetry."""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"twh.Client(base_url={self.base_url!r})"

    # Sandboxes and keys
    def get_sandbox(self) -> Model:
        return self._invoke("get_sandbox", {})  # type: ignore[no-any-return]

    def reset_sandbox(self, *, idempotency_key: Optional[str] = None) -> Model:
        return self._invoke("reset_sandbox", _clean({"idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def delete_sandbox(self) -> None:
        self._invoke("delete_sandbox", {})

    def roll_api_key(self, *, idempotency_key: Optional[str] = None) -> Model:
        return self._invoke("roll_api_key", _clean({"idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    # Items
    def create_item(
        self,
        *,
        sku: str,
        name: str,
        unit: Optional[str] = None,
        low_stock_threshold: Optional[int] = None,
        attributes: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
    ) -> Model:
        body = _clean({"sku": sku, "name": name, "unit": unit, "low_stock_threshold": low_stock_threshold, "attributes": attributes})
        return self._invoke("create_item", _clean({"body": body, "idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def get_item(self, id: str) -> Model:
        return self._invoke("get_item", {"id": id})  # type: ignore[no-any-return]

    def update_item(self, id: str, *, etag: str, **changes: Any) -> Model:
        """Changes an item if it still has ``etag`` (``name=``, ``sku=``, ``unit=``, ...)."""
        return self._invoke("update_item", {"id": id, "etag": etag, "body": _clean(changes)})  # type: ignore[no-any-return]

    def update_item_with(self, id: str, change: Callable[[Model], Dict[str, Any]], *, attempts_max: int = 5) -> Model:
        """Read-modify-write: reads the item, applies ``change`` (answering the fields to set),
        writes with ``If-Match``; on 412 reads again and re-applies, up to ``attempts_max``."""
        from ._errors import PreconditionFailedError

        for attempt in range(attempts_max):
            current = self.get_item(id)
            try:
                return self.update_item(id, etag=current.etag or "", **change(current))
            except PreconditionFailedError:
                if attempt + 1 == attempts_max:
                    raise
        raise AssertionError("unreachable")

    def archive_item(self, id: str, *, etag: str) -> Model:
        return self._invoke("archive_item", {"id": id, "etag": etag})  # type: ignore[no-any-return]

    def list_items(
        self,
        *,
        sku: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page:
        return self._invoke("list_items", _clean(dict(sku=sku, q=q, status=status, limit=limit, cursor=cursor)))  # type: ignore[no-any-return]

    def iter_items(self, **filters: Any) -> Iterator[Model]:
        """Every item matching the filters of :meth:`list_items`, page after page."""
        return self._paginate(self.list_items, filters)

    # Locations
    def create_location(
        self, *, code: str, name: str, kind: Optional[str] = None, idempotency_key: Optional[str] = None
    ) -> Model:
        body = _clean({"code": code, "name": name, "kind": kind})
        return self._invoke("create_location", _clean({"body": body, "idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def get_location(self, id: str) -> Model:
        return self._invoke("get_location", {"id": id})  # type: ignore[no-any-return]

    def update_location(self, id: str, *, etag: str, **changes: Any) -> Model:
        return self._invoke("update_location", {"id": id, "etag": etag, "body": _clean(changes)})  # type: ignore[no-any-return]

    def archive_location(self, id: str, *, etag: str) -> Model:
        return self._invoke("archive_location", {"id": id, "etag": etag})  # type: ignore[no-any-return]

    def list_locations(
        self,
        *,
        code: Optional[str] = None,
        q: Optional[str] = None,
        status: Optional[str] = None,
        kind: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page:
        return self._invoke("list_locations", _clean(dict(code=code, q=q, status=status, kind=kind, limit=limit, cursor=cursor)))  # type: ignore[no-any-return]

    def iter_locations(self, **filters: Any) -> Iterator[Model]:
        return self._paginate(self.list_locations, filters)

    # Movements
    def create_movement(
        self,
        *,
        type: str,
        item_id: str,
        quantity: int,
        location_id: Optional[str] = None,
        from_location_id: Optional[str] = None,
        to_location_id: Optional[str] = None,
        reference: Optional[str] = None,
        reason: Optional[str] = None,
        allow_negative: Optional[bool] = None,
        metadata: Optional[Dict[str, Any]] = None,
        if_match: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> Model:
        """Records a movement (``type`` = receipt, shipment, adjustment, transfer). With
        ``if_match`` (a stock level's etag) it is written only if that level is unchanged."""
        body = _clean(
            dict(
                type=type,
                item_id=item_id,
                quantity=quantity,
                location_id=location_id,
                from_location_id=from_location_id,
                to_location_id=to_location_id,
                reference=reference,
                reason=reason,
                allow_negative=allow_negative,
                metadata=metadata,
            )
        )
        return self._invoke("create_movement", _clean({"body": body, "if_match": if_match, "idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def create_movement_batch(self, movements: List[Dict[str, Any]], *, idempotency_key: Optional[str] = None) -> List[Model]:
        """Records 1..=1000 movements (dicts of :meth:`create_movement`'s fields), all or nothing."""
        return self._invoke("create_movement_batch", _clean({"movements": [_clean(m) for m in movements], "idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def reverse_movement(
        self, id: str, *, reason: Optional[str] = None, allow_negative: Optional[bool] = None, idempotency_key: Optional[str] = None
    ) -> Model:
        body = _clean({"reason": reason, "allow_negative": allow_negative})
        return self._invoke("reverse_movement", _clean({"id": id, "body": body, "idempotency_key": idempotency_key}))  # type: ignore[no-any-return]

    def get_movement(self, id: str) -> Model:
        return self._invoke("get_movement", {"id": id})  # type: ignore[no-any-return]

    def list_movements(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        type: Optional[str] = None,
        after_sequence: Optional[int] = None,
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page:
        args = dict(
            item_id=item_id,
            location_id=location_id,
            type=type,
            after_sequence=after_sequence,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
        return self._invoke("list_movements", _clean(args))  # type: ignore[no-any-return]

    def iter_movements(self, **filters: Any) -> Iterator[Model]:
        return self._paginate(self.list_movements, filters)

    # Stock levels
    def get_stock_level(self, *, item_id: str, location_id: str, as_of: Optional[_dt.datetime] = None) -> Model:
        return self._invoke("get_stock_level", _clean({"item_id": item_id, "location_id": location_id, "as_of": as_of}))  # type: ignore[no-any-return]

    def list_stock_levels(
        self,
        *,
        item_id: Optional[str] = None,
        location_id: Optional[str] = None,
        below_threshold: Optional[bool] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page:
        args = dict(item_id=item_id, location_id=location_id, below_threshold=below_threshold, limit=limit, cursor=cursor)
        return self._invoke("list_stock_levels", _clean(args))  # type: ignore[no-any-return]

    def iter_stock_levels(self, **filters: Any) -> Iterator[Model]:
        return self._paginate(self.list_stock_levels, filters)

    # Events
    def get_event(self, id: str) -> Model:
        return self._invoke("get_event", {"id": id})  # type: ignore[no-any-return]

    def list_events(
        self, *, type: Optional[str] = None, after: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page:
        return self._invoke("list_events", _clean(dict(type=type, after=after, limit=limit, cursor=cursor)))  # type: ignore[no-any-return]

    def iter_events(self, **filters: Any) -> Iterator[Model]:
        return self._paginate(self.list_events, filters)

    @staticmethod
    def _paginate(list_page: Callable[..., Page], filters: Dict[str, Any]) -> Iterator[Model]:
        cursor = filters.pop("cursor", None)
        while True:
            page = list_page(cursor=cursor, **filters)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def _to_thread(method: Callable[..., T]) -> Callable[..., Any]:
    name = method.__name__

    @functools.wraps(method)
    async def run(self: "AsyncClient", *args: Any, **kwargs: Any) -> Any:
        bound = getattr(self._sync, name)
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(bound, *args, **kwargs))

    return run


class AsyncClient(_Base):
    """A TWH API client for asyncio: the operations of :class:`Client` as coroutines, and
    ``iter_*`` as async iterators.

    Each call runs the Rust SDK with the GIL released in the loop's default executor.
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
        self._native = _native_client(api_key, base_url, timeout, max_retries, user_agent_suffix)
        self._sync = Client._wrap(self._native)

    @classmethod
    def _wrap(cls, native: "_native.Client") -> "AsyncClient":
        self = cls.__new__(cls)
        self._native = native
        self._sync = Client._wrap(native)
        return self

    def with_api_key(self, api_key: str) -> "AsyncClient":
        return AsyncClient._wrap(self._native.with_api_key(api_key))

    async def close(self) -> None:
        """Nothing to release; for symmetry with ``async with``."""

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"twh.AsyncClient(base_url={self.base_url!r})"

    get_sandbox = _to_thread(Client.get_sandbox)
    reset_sandbox = _to_thread(Client.reset_sandbox)
    delete_sandbox = _to_thread(Client.delete_sandbox)
    roll_api_key = _to_thread(Client.roll_api_key)
    create_item = _to_thread(Client.create_item)
    get_item = _to_thread(Client.get_item)
    update_item = _to_thread(Client.update_item)
    update_item_with = _to_thread(Client.update_item_with)
    archive_item = _to_thread(Client.archive_item)
    list_items = _to_thread(Client.list_items)
    create_location = _to_thread(Client.create_location)
    get_location = _to_thread(Client.get_location)
    update_location = _to_thread(Client.update_location)
    archive_location = _to_thread(Client.archive_location)
    list_locations = _to_thread(Client.list_locations)
    create_movement = _to_thread(Client.create_movement)
    create_movement_batch = _to_thread(Client.create_movement_batch)
    reverse_movement = _to_thread(Client.reverse_movement)
    get_movement = _to_thread(Client.get_movement)
    list_movements = _to_thread(Client.list_movements)
    get_stock_level = _to_thread(Client.get_stock_level)
    list_stock_levels = _to_thread(Client.list_stock_levels)
    get_event = _to_thread(Client.get_event)
    list_events = _to_thread(Client.list_events)

    async def _apaginate(self, list_page: Callable[..., Any], filters: Dict[str, Any]) -> AsyncIterator[Model]:
        cursor = filters.pop("cursor", None)
        while True:
            page: Page = await list_page(cursor=cursor, **filters)
            for m in page.data:
                yield m
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_items(self, **filters: Any) -> AsyncIterator[Model]:
        return self._apaginate(self.list_items, filters)

    def iter_locations(self, **filters: Any) -> AsyncIterator[Model]:
        return self._apaginate(self.list_locations, filters)

    def iter_movements(self, **filters: Any) -> AsyncIterator[Model]:
        return self._apaginate(self.list_movements, filters)

    def iter_stock_levels(self, **filters: Any) -> AsyncIterator[Model]:
        return self._apaginate(self.list_stock_levels, filters)

    def iter_events(self, **filters: Any) -> AsyncIterator[Model]:
        return self._apaginate(self.list_events, filters)
