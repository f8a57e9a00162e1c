"""`AsyncClient` (asyncio): the TWH API client, with every operation of `_operations.py`.

This file is the hand-written part of both clients: construction, sandboxes, other keys and
conveniences; the operations are generated from the OpenAPI document (``_operations.py``).
``cargo xtask generate`` writes ``_sync_client.py`` (the blocking ``Client``) from this one by
dropping ``async`` and ``await``: edit this one, then run it.

Both wrap the Rust SDK's ``twh::Client`` (``twh._native.Client``), which does the retries,
idempotency keys, ETags and error mapping. The asyncio client's calls are awaitables resolved
from the Rust runtime (no thread per call).
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

from . import _native
from ._operations import _AsyncOperations
from ._response import Hook
from ._transport import READ_MODIFY_WRITE_ATTEMPTS_MAX, _clean, _encode
from .types import Job, Plan, SandboxCreated, Seed

__all__ = ["AsyncClient", "READ_MODIFY_WRITE_ATTEMPTS_MAX"]


class AsyncClient(_AsyncOperations):
    """A TWH API client (asyncio). Safe to share between tasks and threads.

    ``api_key`` defaults to ``TWH_API_KEY``, ``base_url`` to ``TWH_BASE_URL``; ``timeout``
    (seconds per attempt, default 30) and ``max_retries`` (default 3) as in every TWH SDK. A missing
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
        settings = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "user_agent_suffix": user_agent_suffix,
        }
        self._native = _native.Client(_encode(settings))

    @classmethod
    async def create_sandbox(
        cls,
        *,
        base_url: Optional[str] = None,
        admin_token: Optional[str] = None,
        name: Optional[str] = None,
        plan: Optional[Plan] = None,
        seed: Optional[Seed] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> Tuple["AsyncClient", SandboxCreated]:
        """Creates a sandbox on the server at ``base_url`` (else ``TWH_BASE_URL``) and answers a
        client with its secret key, and its details (both keys, shown only now). A local
        emulator needs no key; where an admin token is required, pass it as ``admin_token``
        (else ``TWH_API_KEY`` is sent)."""
        request = _clean({"name": name, "plan": plan, "seed": seed})
        settings = {
            "api_key": admin_token,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "user_agent_suffix": user_agent_suffix,
        }
        native, created = await cls._create_sandbox(request, settings)
        return cls._wrap(native), created

    @classmethod
    def _wrap(cls, native: "_native.Client") -> "AsyncClient":
        self = cls.__new__(cls)
        self._native = native
        return self

    def with_options(
        self,
        *,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        on_request: Optional[Hook] = None,
        on_response: Optional[Hook] = None,
    ) -> "AsyncClient":
        """A client that shares this one's connections and key and differs only in what is given:
        ``timeout`` (seconds per attempt), ``max_retries``, ``headers`` added to every request,
        and hooks called once per attempt (``on_request`` before it, ``on_response`` after it,
        each with a :class:`twh.Attempt`). This client keeps its own settings."""
        native, observed = self._options(timeout, max_retries, headers, on_request, on_response)
        client = AsyncClient._wrap(native)
        client._observed = observed
        return client

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

    async def import_movements_csv(self, data: str, *, idempotency_key: Optional[str] = None) -> Job:
        """Starts an ``import_movements`` job of CSV text (:meth:`create_job` with ``type`` and
        ``format`` set; header ``type,item_id,location_id,from_location_id,to_location_id,
        quantity,reference,reason``; unused columns may be absent; a row's ``reference`` makes it
        idempotent). Poll it with :meth:`get_job`; bad rows are reported by line number (the
        header is line 1)."""
        return await self.create_job(type="import_movements", format="csv", data=data, idempotency_key=idempotency_key)
