"""What both clients share: the native call (blocking or awaited), argument and body encoding,
the shaping of answers into result classes and pages, paging and read-modify-write.

Every operation goes through the Rust SDK's one dispatch (``twh._native.Client.call``): the
operation's name, its arguments as JSON (path and query parameters by their names in the
document, ``idempotency_key``, ``if_match``, ``if_none_match``; ``null`` is absent) and the body
as the JSON bytes to send. The answer comes back as the server sent it, ``(status, etag,
body)``, and is parsed here once: a result class wraps the JSON object, so a field or an enum
value newer than this package is kept rather than dropped or refused.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import random
import time
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
)

from . import _native
from ._errors import PreconditionFailedError, UnexpectedResponseError, _from_details
from ._models import Model, _set
from ._response import Hook, Response, _observer
from .types import SandboxCreated

__all__ = ["Page", "READ_MODIFY_WRITE_ATTEMPTS_MAX"]

M = TypeVar("M", bound=Model)

#: What the native call answers: the status, the ``ETag`` header (if any), the body and the
#: headers as ``name: value`` lines.
Answer = Tuple[int, Optional[str], bytes, str]

_log = logging.getLogger("twh")

_NativeClient = _native.Client

#: Most pages an ``iter_*`` iterator reads before it gives up (a server that kept answering a
#: cursor would otherwise be followed for ever): 100,000 pages of up to 100 results.
PAGES_MAX = 100_000

#: Most rounds of an ``update_*_with`` before the last 412 is raised (the Rust SDK's bound).
READ_MODIFY_WRITE_ATTEMPTS_MAX = 10


def _default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat()
    if isinstance(value, Model):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))


def _clean(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """Drops the fields left at ``None`` (not sent)."""
    return {k: v for k, v in fields.items() if v is not None}


class NotGiven:
    """The type of :data:`NOT_GIVEN`: a merge-patch argument left out (not sent), as opposed to
    ``None``, which is sent as ``null`` and clears a clearable field (``low_stock_threshold``,
    ``description``, ``retry_schedule_seconds``)."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
"""The default of a clearable merge-patch argument: the field is not sent and keeps its value."""


def _body(fields: Mapping[str, Any], nullable: Tuple[str, ...] = ()) -> bytes:
    """A request body: the JSON object of the fields given. ``NOT_GIVEN`` is never sent; ``None``
    is not sent either, except for the ``nullable`` fields, where it is sent as ``null``."""
    return _encode(
        {k: v for k, v in fields.items() if v is not NOT_GIVEN and (v is not None or k in nullable)}
    ).encode()


class Page(Generic[M]):
    """One page of a list: ``data`` (results) and ``next_cursor`` (``None`` on the last)."""

    __slots__ = ("data", "next_cursor", "last_response")

    def __init__(self, data: List[M], next_cursor: Optional[str], last_response: Optional[Response] = None) -> None:
        self.data = data
        self.next_cursor = next_cursor
        #: The metadata of the answer this page came in.
        self.last_response = last_response

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


def _one(cls: Type[M], answer: Answer) -> M:
    result = cls(json.loads(answer[2]), answer[1])
    _set(result, "_answer", (answer[0], answer[3]))
    return result


def _maybe(cls: Type[M], answer: Answer) -> Optional[M]:
    """A conditional read: ``None`` when the caller's copy is current (304)."""
    return None if answer[0] == 304 else _one(cls, answer)


def _list(cls: Type[M], answer: Answer) -> List[M]:
    return [cls(d) for d in json.loads(answer[2])["data"]]


def _page(cls: Type[M], answer: Answer) -> Page[M]:
    raw = json.loads(answer[2])
    return Page([cls(d) for d in raw["data"]], raw.get("next_cursor"), Response(answer[0], answer[3]))


def _text(answer: Answer) -> str:
    return answer[2].decode()


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


def _check_attempts(attempts_max: int) -> None:
    if attempts_max < 1:
        raise ValueError("attempts_max must be at least 1")


class _Transport:
    _native: "_native.Client"
    #: Whether `_native` already reports attempts (hooks given to `with_options`).
    _observed: bool = False
    #: `_native` with an observer that only logs, made when the `twh` logger is first found at DEBUG.
    _logged: "Optional[_NativeClient]" = None

    @property
    def base_url(self) -> str:
        """The base URL requests go to."""
        return self._native.base_url

    def _client(self) -> "_NativeClient":
        """The native client of a call: the one that logs each attempt when the `twh` logger is
        at DEBUG (checked per call, so logging configured later still applies; off, it costs one
        cached level check)."""
        if self._observed or not _log.isEnabledFor(logging.DEBUG):
            return self._native
        if self._logged is None:
            self._logged = self._native.with_options("{}", _observer(None, None))
        return self._logged

    def _options(
        self,
        timeout: Optional[float],
        max_retries: Optional[int],
        headers: Optional[Mapping[str, str]],
        on_request: Optional[Hook],
        on_response: Optional[Hook],
    ) -> "Tuple[_NativeClient, bool]":
        options = _encode(_clean({"timeout": timeout, "max_retries": max_retries, "headers": dict(headers or {})}))
        hooked = on_request is not None or on_response is not None
        observer = _observer(on_request, on_response) if hooked else None
        return self._native.with_options(options, observer), hooked or self._observed


class _SyncTransport(_Transport):
    def _send(self, op: str, args: Dict[str, Any], body: Optional[bytes]) -> Answer:
        return self._client().call(op, _encode(args), body)

    def _paginate(self, list_page: Callable[..., Page[M]], args: Dict[str, Any]) -> Iterator[M]:
        cursor: Optional[str] = args.get("cursor")
        pages = 0
        while True:
            page = list_page(**args)
            pages += 1
            yield from page.data
            cursor = _next_cursor(page, cursor, pages)
            if cursor is None:
                return
            args = {**args, "cursor": cursor}

    def _read_modify_write(
        self,
        read: Callable[[], M],
        write: Callable[..., M],
        change: Callable[[M], Mapping[str, Any]],
        attempts_max: int,
    ) -> M:
        _check_attempts(attempts_max)
        for attempt in range(1, attempts_max + 1):
            current = read()
            try:
                return write(etag=current.etag, **change(current))
            except PreconditionFailedError:
                if attempt == attempts_max:
                    raise
            time.sleep(_conflict_pause_seconds(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _create_sandbox(request: Dict[str, Any], settings: Dict[str, Any]) -> "Tuple[_native.Client, SandboxCreated]":
        native, details = _native.Client.create_sandbox(_encode(request), _encode(settings))
        return native, SandboxCreated(json.loads(details))


class _AsyncTransport(_Transport):
    async def _send(self, op: str, args: Dict[str, Any], body: Optional[bytes]) -> Answer:
        status, etag, payload, headers = await self._client().call_async(op, _encode(args), body)
        if status == 0:  # an error, described for its exception class
            raise _from_details(payload)
        return status, etag, payload, headers

    async def _apaginate(self, list_page: Callable[..., Awaitable[Page[M]]], args: Dict[str, Any]) -> AsyncIterator[M]:
        cursor: Optional[str] = args.get("cursor")
        pages = 0
        while True:
            page = await list_page(**args)
            pages += 1
            for result in page.data:
                yield result
            cursor = _next_cursor(page, cursor, pages)
            if cursor is None:
                return
            args = {**args, "cursor": cursor}

    async def _read_modify_write(
        self,
        read: Callable[[], Awaitable[M]],
        write: Callable[..., Awaitable[M]],
        change: Callable[[M], Mapping[str, Any]],
        attempts_max: int,
    ) -> M:
        _check_attempts(attempts_max)
        for attempt in range(1, attempts_max + 1):
            current = await read()
            try:
                return await write(etag=current.etag, **change(current))
            except PreconditionFailedError:
                if attempt == attempts_max:
                    raise
            await asyncio.sleep(_conflict_pause_seconds(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    async def _create_sandbox(
        request: Dict[str, Any], settings: Dict[str, Any]
    ) -> "Tuple[_native.Client, SandboxCreated]":
        native, details = await _native.Client.create_sandbox_async(_encode(request), _encode(settings))
        if native is None:
            raise _from_details(details)
        return native, SandboxCreated(json.loads(details))
