"""Results: the API's JSON with attribute access and ``.to_dict()``."""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterator, Optional

__all__ = ["Model"]


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Model(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class Model:
    """A result of the API: ``item.sku``, ``item["sku"]``, ``item.to_dict()``.

    Single resources read or written carry their ``etag`` (for ``If-Match``); it is not part of
    ``to_dict()``.
    """

    __slots__ = ("_data", "etag")

    _data: Dict[str, Any]
    etag: Optional[str]

    def __init__(self, data: Dict[str, Any], etag: Optional[str] = None) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "etag", etag)

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "_data")
        if name in data:
            return _wrap(data[name])
        if name.endswith("_") and name[:-1] in data:  # `type_` for `type`
            return _wrap(data[name[:-1]])
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("results are read-only; use .to_dict() for a mutable copy")

    def __getitem__(self, key: str) -> Any:
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

    def __dir__(self) -> Any:
        return list(self._data) + ["to_dict", "etag"]

    def get(self, key: str, default: Any = None) -> Any:
        return _wrap(self._data.get(key, default))

    def to_dict(self) -> Dict[str, Any]:
        """A deep copy of the JSON object."""
        return copy.deepcopy(self._data)

    def __repr__(self) -> str:
        kind = self._data.get("object")
        head = f"Model[{kind}]" if isinstance(kind, str) else "Model"
        return f"{head}({self._data!r})"
