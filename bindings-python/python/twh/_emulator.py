"""`Emulator`: the whole TWH server in-process (the Rust emulator on a local port)."""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _native
from ._async_client import AsyncClient
from ._sync_client import Client
from .types import Fault, FaultAction, Meter, Plan, SandboxCreated, Seed

__all__ = ["Emulator"]


class Emulator:
    """A running emulator: ``with twh.Emulator() as emu:`` (or ``async with``).

    It starts when constructed and stops on ``stop()`` or when the ``with`` block ends.
    """

    def __init__(
        self,
        *,
        port: Optional[int] = None,
        rate_limit_per_second: Optional[int] = None,
        rate_limit_burst: Optional[int] = None,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        webhook_retry_schedule_seconds: Optional[List[int]] = None,
        webhook_timeout_ms: Optional[int] = None,
        key_grace_seconds: Optional[int] = None,
        idempotency_ttl_seconds: Optional[int] = None,
        free_quotas: Optional[Dict[Meter, int]] = None,
    ) -> None:
        """``port``: any free one by default. The per-key rate limit (default 1000 requests a
        second in bursts of 2000) can be changed; 0 turns it off (for load tests). ``data_dir``
        keeps the state in that directory (SQLite) and recovers it on the next start; every
        acknowledged write is on disk before its answer. By default the state is in memory.
        As `twh-emulator serve` has them: the default webhook retry delays in seconds, the timeout
        of one webhook attempt, the grace period of a rolled key and the lifetime of idempotency
        records (seconds of emulator time), and the `free` plan's hard monthly quotas by meter."""
        # The Rust SDK reads these (`twh::emulator::Options`, the same reading as Node's).
        options = {
            "port": port,
            "rate_limit_per_second": rate_limit_per_second,
            "rate_limit_burst": rate_limit_burst,
            "data_dir": os.fspath(data_dir) if data_dir is not None else None,
            "webhook_retry_schedule_seconds": webhook_retry_schedule_seconds,
            "webhook_timeout_ms": webhook_timeout_ms,
            "key_grace_seconds": key_grace_seconds,
            "idempotency_ttl_seconds": idempotency_ttl_seconds,
            "free_quotas": free_quotas,
        }
        self._native = _native.Emulator(json.dumps(options))

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._native.base_url

    @property
    def running(self) -> bool:
        return self._native.running

    def _create(
        self, name: Optional[str], plan: Optional[Plan], seed: Optional[Seed]
    ) -> Tuple["_native.Client", SandboxCreated]:
        request = {k: v for k, v in {"name": name, "plan": plan, "seed": seed}.items() if v is not None}
        native, details = self._native.create_sandbox(json.dumps(request))
        return native, SandboxCreated(json.loads(details))

    def create_sandbox(
        self, *, name: Optional[str] = None, plan: Optional[Plan] = None, seed: Optional[Seed] = None
    ) -> Client:
        """Creates a sandbox (default: seed ``empty``, plan ``free``) and returns a ready
        :class:`Client` with its secret key."""
        return Client._wrap(self._create(name, plan, seed)[0])

    def create_sandbox_with_details(
        self, *, name: Optional[str] = None, plan: Optional[Plan] = None, seed: Optional[Seed] = None
    ) -> Tuple[Client, SandboxCreated]:
        """Like :meth:`create_sandbox`, also answering the sandbox's details with both keys."""
        native, details = self._create(name, plan, seed)
        return Client._wrap(native), details

    def create_async_sandbox(
        self, *, name: Optional[str] = None, plan: Optional[Plan] = None, seed: Optional[Seed] = None
    ) -> AsyncClient:
        """Creates a sandbox and returns a ready :class:`AsyncClient`."""
        return AsyncClient._wrap(self._create(name, plan, seed)[0])

    def advance_clock(self, by: Union[float, _dt.timedelta]) -> _dt.datetime:
        """Moves the emulator clock forward (seconds or a timedelta), firing what became due;
        answers the new emulator time."""
        seconds = by.total_seconds() if isinstance(by, _dt.timedelta) else float(by)
        now = self._native.advance_clock(seconds)
        return _dt.datetime.fromisoformat(now.replace("Z", "+00:00"))

    def inject_fault(
        self,
        action: FaultAction,
        *,
        times: int = 1,
        path_prefix: Optional[str] = None,
        method: Optional[str] = None,
        status: Optional[int] = None,
        delay_ms: Optional[int] = None,
    ) -> Fault:
        """Arms a fault (``error_before_commit``, ``error_after_commit``, ``delay``,
        ``drop_connection_after_commit``) for the next ``times`` matching requests."""
        spec: Dict[str, Any] = {"action": action, "times": times}
        for k, v in {"path_prefix": path_prefix, "method": method, "status": status, "delay_ms": delay_ms}.items():
            if v is not None:
                spec[k] = v
        return Fault(json.loads(self._native.inject_fault(json.dumps(spec))))

    def clear_faults(self) -> None:
        """Disarms every fault."""
        self._native.clear_faults()

    def stop(self) -> None:
        """Stops accepting, lets in-flight requests finish. Idempotent."""
        self._native.stop()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> "Emulator":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"twh.Emulator(base_url={self.base_url!r}, running={self.running})"
