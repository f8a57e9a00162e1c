"""What both clients share: argument encoding, the native call (blocking or awaited), and the
shaping of answers into result classes and pages.

The native module answers JSON text; a single resource read or written comes as
``{"value": ..., "etag": ...}``, a page as ``{"data": [...], "next_cursor": ...}``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import random
import time
from typing import Any, Dict, Generic, Iterator, List, Optional, Tuple, Type, TypeVar

from . import _native
from ._errors import TWHError, UnexpectedResponseError
from ._models import Model
from .types import SandboxCreated

__all__ = ["Page"]

M = TypeVar("M", bound=Model)

#: Most pages an ``iter_*`` iterator reads before it gives up (a server that kept answering a
#: cursor would otherwise be followed for ever): 100,000 pages of up to 100 results.
PAGES_MAX = 100_000


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


def _encode(args: Dict[str, Any]) -> str:
    return json.dumps(args, default=_default, separators=(",", ":"))


class Page(Generic[M]):
    """One page of a list: ``data`` (results) and ``next_cursor`` (``None`` on the last)."""

    __slots__ = ("data", "next_cursor")

    def __init__(self, data: List[M], next_cursor: Optional[str]) -> None:
        self.data = data
        self.next_cursor = next_cursor

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[M]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> M:
        return self.data[index]

    def to_dict(self) -> Dict[str, Any]:
        return {"data": [m.to_dict() for m in self.data], "next_cursor": self.next_cursor}

    def __repr__(self) -> str:
        return f"Page(len={len(self.data)}, next_cursor={self.next_cursor!r})"


def _versioned(cls: Type[M], raw: Any) -> M:
    return cls(raw["value"], raw["etag"])


def _maybe_versioned(cls: Type[M], raw: Any) -> Optional[M]:
    return None if raw is None else cls(raw["value"], raw["etag"])


def _plain(cls: Type[M], raw: Any) -> M:
    return cls(raw)


def _models(cls: Type[M], raw: Any) -> List[M]:
    return [cls(d) for d in raw]


def _page(cls: Type[M], raw: Any) -> Page[M]:
    return Page([cls(d) for d in raw["data"]], raw["next_cursor"])


def _next_cursor(page: Page[Any], cursor: Optional[str], pages: int) -> Optional[str]:
    """The cursor of the page after ``page``, checking that paging moves on and ends."""
    if page.next_cursor is None:
        return None
    if page.next_cursor == cursor:
        raise UnexpectedResponseError(f"the server answered the cursor {cursor!r} with itself")
    if pages >= PAGES_MAX:
        raise UnexpectedResponseError(f"more than {PAGES_MAX} pages")
    return page.next_cursor


def _conflict_pause_seconds(attempt: int) -> float:
    """The wait after losing round ``attempt`` of a read-modify-write to another writer: full
    jitter under 2^attempt ms, at most 64 ms, as the Rust SDK and Node. Writers that retry at
    once can lose to each other in lockstep until the bound; a random pause breaks the tie."""
    return random.uniform(0, 2 ** min(attempt, 6)) / 1000


class _Transport:
    _native: "_native.Client"

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._native.base_url


class _SyncTransport(_Transport):
    def _call(self, op: str, args: Dict[str, Any]) -> Any:
        return json.loads(self._native.call(op, _encode(args)))

    @staticmethod
    def _conflict_pause(attempt: int) -> None:
        time.sleep(_conflict_pause_seconds(attempt))

    @staticmethod
    def _create_sandbox(request: Dict[str, Any], config: Dict[str, Any]) -> "Tuple[_native.Client, SandboxCreated]":
        native, details = _native.Client.create_sandbox(_encode(request), **config)
        return native, SandboxCreated(json.loads(details))


class _AsyncTransport(_Transport):
    async def _call(self, op: str, args: Dict[str, Any]) -> Any:
        ok, payload = await self._native.call_async(op, _encode(args))
        if not ok:
            raise TWHError._from_details(payload)
        return json.loads(payload)

    @staticmethod
    async def _conflict_pause(attempt: int) -> None:
        await asyncio.sleep(_conflict_pause_seconds(attempt))

    @staticmethod
    async def _create_sandbox(request: Dict[str, Any], config: Dict[str, Any]) -> "Tuple[_native.Client, SandboxCreated]":
        native, details = await _native.Client.create_sandbox_async(_encode(request), **config)
        if native is None:
            raise TWHError._from_details(details)
        return native, SandboxCreated(json.loads(details))
