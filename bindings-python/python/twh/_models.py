"""Results: the API's JSON with attribute access and ``.to_dict()``.

:class:`Model` is the base of every result class of :mod:`twh.types` (generated from the OpenAPI
document, so each field has its real type for mypy). A result keeps the JSON object it was made
from; attributes read it on access, turning nested objects into their result classes and
``date-time`` strings into aware :class:`datetime.datetime` values.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from typing import Any, ClassVar, Dict, Iterator, Mapping, Optional, Tuple, Type, TypeVar

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


# How a field is converted on access: ("model", cls), ("models", cls) for a list of them,
# ("datetime", None), ("copy", None) for free-form objects and lists of plain values.
_Conversion = Tuple[str, Any]


class Model:
    """A result of the API: ``item.sku``, ``item["sku"]``, ``item.to_dict()``.

    Single resources read or written carry their ``etag`` (for ``If-Match``); it is not part of
    ``to_dict()``. Results are read-only.
    """

    __slots__ = ("_data", "etag")

    _data: Dict[str, Any]
    etag: Optional[str]

    # Filled in by the generated subclasses of twh.types.
    _conversions: ClassVar[Mapping[str, _Conversion]] = {}

    def __init__(self, data: Dict[str, Any], etag: Optional[str] = None) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"{type(self).__name__} is made from a JSON object, not {type(data).__name__}")
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "etag", etag)

    @classmethod
    def from_dict(cls: Type[M], data: Dict[str, Any], etag: Optional[str] = None) -> M:
        """The result for a JSON object (as ``to_dict()`` gives)."""
        return cls(data, etag)

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "_data")
        if name not in data:
            if name.endswith("_") and name[:-1] in data:  # `type_` for `type`
                name = name[:-1]
            else:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        return self._convert(name, data[name])

    def _convert(self, name: str, value: Any) -> Any:
        conversion = type(self)._conversions.get(name)
        if value is None:
            return None
        if conversion is None:
            return _wrap(value)
        kind, target = conversion
        if kind == "datetime":
            return parse_datetime(value)
        if kind == "model":
            return target(value)
        if kind == "models":
            return [target(v) for v in value]
        if kind == "copy":  # a free-form object or a list of plain values: the caller's own copy
            return copy.deepcopy(value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("results are read-only; use .to_dict() for a mutable copy")

    def __getitem__(self, key: str) -> Any:
        return self._convert(key, self._data[key])

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

    def __dir__(self) -> Any:
        return list(self._data) + ["to_dict", "etag"]

    def get(self, key: str, default: Any = None) -> Any:
        return self._convert(key, self._data[key]) if key in self._data else default

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
