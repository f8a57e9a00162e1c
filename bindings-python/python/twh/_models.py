"""Results: the API's JSON with attribute access and ``.to_dict()``.

:class:`Model` is the base of every result class of :mod:`twh.types` (generated from the OpenAPI
document, so each field has its real type for mypy). A result keeps the JSON object it was made
from, as the server sent it; attributes read it on access, turning nested objects into their
result classes and ``date-time`` strings into aware :class:`datetime.datetime` values.

Forward compatibility: a field newer than this package stays in the object (``result["field"]``,
``.to_dict()``), and an enum value it does not know reads as its plain string. Attributes are
only the declared properties, so a misspelt one is an error for mypy and at run time.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from typing import Any, Dict, Iterator, Optional, Tuple, Type, TypeVar, Union

from ._response import Response

__all__ = ["Model", "parse_datetime"]

M = TypeVar("M", bound="Model")

_FRACTION = re.compile(r"\.(\d+)")


def parse_datetime(text: str) -> _dt.datetime:
    """An RFC 3339 time (``2026-01-01T00:00:00.123456789Z``) as an aware datetime.

    ``datetime.fromisoformat`` of Python 3.9 takes neither ``Z`` nor other than 3 or 6
    fractional digits, so both are normalised first (digits beyond microseconds are dropped).
    """
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    t = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], t, count=1)
    value = _dt.datetime.fromisoformat(t)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value


#: Sets an attribute of a read-only result (its ``__setattr__`` refuses).
_set = object.__setattr__


class Model:
    """A result of the API: ``item.sku``, ``item["sku"]`` (any field, known or newer),
    ``item.to_dict()``.

    Single resources read or written carry their ``etag`` (for ``If-Match``); it is not part of
    ``to_dict()``. Results are read-only.
    """

    __slots__ = ("_data", "etag", "_answer")

    _data: Dict[str, Any]
    etag: Optional[str]
    #: The answer's status and header text until ``last_response`` is first read, then its
    #: ``Response`` (made on demand: most callers never look).
    _answer: "Union[Tuple[int, str], Response, None]"

    def __init__(self, data: Dict[str, Any], etag: Optional[str] = None) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"{type(self).__name__} is made from a JSON object, not {type(data).__name__}")
        _set(self, "_data", data)
        _set(self, "etag", etag)
        _set(self, "_answer", None)

    @property
    def last_response(self) -> Optional[Response]:
        """The metadata of the answer this result came in (status, headers, request id, rate
        limit); ``None`` for a result nested in another or made by hand."""
        answer = self._answer
        if answer is None or isinstance(answer, Response):
            return answer
        response = Response(answer[0], answer[1])
        _set(self, "_answer", response)
        return response

    @classmethod
    def from_dict(cls: Type[M], data: Dict[str, Any], etag: Optional[str] = None) -> M:
        """The result for a JSON object (as ``to_dict()`` gives)."""
        return cls(data, etag)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("results are read-only; use .to_dict() for a mutable copy")

    def __getitem__(self, key: str) -> Any:
        if key not in self._data:
            raise KeyError(key)
        if isinstance(getattr(type(self), key, None), property):
            return getattr(self, key)
        return _wrap(self._data[key])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Model):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key`` (converted like an attribute), or ``default`` when absent."""
        return self[key] if key in self._data else default

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the JSON object."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


def _wrap(value: Any) -> Any:
    """Free-form values (attributes, metadata, an event's data): objects as untyped Models."""
    if isinstance(value, dict):
        return Model(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value
