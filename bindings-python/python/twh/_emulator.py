"""`Emulator`: the whole TWH server in-process (the Rust emulator on a local port), or the
handle of one that another process serves (:meth:`Emulator.connect`).

Every method talks HTTP to the emulator's control plane (``/_emulator/…``) through the Rust
SDK's handle, so a started and a connected emulator behave the same.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from . import _native
from ._async_client import AsyncClient
from ._models import parse_datetime
from ._sync_client import Client
from ._transport import Page, _next_cursor
from .types import ClockState, Fault, FaultAction, JournalEntry, Meter, Plan, SandboxCreated, Seed, SinkEntry

__all__ = ["Emulator", "SandboxRef"]

#: Which sandbox a call is about: its id (``sbx_…``), its details, or a client using one of its keys.
SandboxRef = Union[str, SandboxCreated, Client]


def _sandbox_id(sandbox: Optional[SandboxRef]) -> Optional[str]:
    if sandbox is None or isinstance(sandbox, str):
        return sandbox
    if isinstance(sandbox, SandboxCreated):
        return sandbox.id
    if isinstance(sandbox, Client):
        return sandbox.get_sandbox().id
    raise TypeError(f"sandbox must be an id, a SandboxCreated or a Client, not {type(sandbox).__name__}")


class Emulator:
    """A running emulator: ``with twh.Emulator() as emu:`` (or ``async with``), or
    ``twh.Emulator.connect(base_url)`` for one that another process serves.

    A started one stops on ``stop()`` or when the ``with`` block ends; a connected one is only
    closed (the other process serves on).
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
        deterministic: Optional[int] = None,
        journal_size: Optional[int] = None,
    ) -> None:
        """``port``: any free one by default. The per-key rate limit (default 1000 requests a
        second in bursts of 2000) can be changed; 0 turns it off (for load tests). ``data_dir``
        keeps the state in that directory (SQLite) and recovers it on the next start; every
        acknowledged write is on disk before its answer. By default the state is in memory.
        As `twh-emulator serve` has them: the default webhook retry delays in seconds, the timeout
        of one webhook attempt, the grace period of a rolled key and the lifetime of idempotency
        records (seconds of emulator time), and the `free` plan's hard monthly quotas by meter.
        ``deterministic`` (a seed, as ``twh-emulator serve --deterministic SEED``): ids, keys,
        webhook secrets and request ids come from a generator seeded by it and the clock starts at
        2030-01-01T00:00:00Z, moving only when advanced, so the same calls get the same answers on
        every run. ``journal_size``: most requests the request journal keeps (default 10,000, as
        ``twh-emulator serve --journal-size``); 0 turns it off."""
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
            "deterministic": deterministic,
            "journal_size": journal_size,
        }
        self._native = _native.Emulator(json.dumps(options))

    @classmethod
    def connect(cls, base_url: str, admin_token: Optional[str] = None) -> "Emulator":
        """The handle of an emulator that another process serves (``twh-emulator serve``) at
        ``base_url``, sending ``admin_token`` (its ``--admin-token``) if given. Checks that an
        emulator answers there and accepts the token. Its ``stop()`` stops nothing."""
        emu = cls.__new__(cls)
        emu._native = _native.Emulator.connect(base_url, admin_token)
        return emu

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._native.base_url

    @property
    def running(self) -> bool:
        """Whether the handle is usable (not stopped or closed)."""
        return self._native.running

    @property
    def connected(self) -> bool:
        """Whether this handle was made by :meth:`connect` (the server runs elsewhere)."""
        return self._native.connected

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

    def clock(self, *, sandbox: Optional[SandboxRef] = None) -> ClockState:
        """The emulator clock, or ``sandbox``'s own (the emulator clock plus its offset)."""
        return ClockState(json.loads(self._native.clock(_sandbox_id(sandbox))))

    def advance_clock(self, by: Union[float, _dt.timedelta], *, sandbox: Optional[SandboxRef] = None) -> _dt.datetime:
        """Moves the clock forward (seconds or a timedelta), firing what became due, and answers
        the new time: ``sandbox``'s clock only (other sandboxes do not see it), or, without
        ``sandbox``, the emulator clock and so every sandbox's."""
        seconds = by.total_seconds() if isinstance(by, _dt.timedelta) else float(by)
        return parse_datetime(self._native.advance_clock(seconds, _sandbox_id(sandbox)))

    def inject_fault(
        self,
        action: FaultAction,
        *,
        times: int = 1,
        path_prefix: Optional[str] = None,
        method: Optional[str] = None,
        status: Optional[int] = None,
        delay_ms: Optional[int] = None,
        sandbox: Optional[SandboxRef] = None,
    ) -> Fault:
        """Arms a fault (``error_before_commit``, ``error_after_commit``, ``delay``,
        ``drop_connection_after_commit``) for the next ``times`` matching requests; with
        ``sandbox``, only requests authenticated to that sandbox match."""
        spec: Dict[str, Any] = {"action": action, "times": times}
        fields = {
            "path_prefix": path_prefix,
            "method": method,
            "status": status,
            "delay_ms": delay_ms,
            "sandbox_id": _sandbox_id(sandbox),
        }
        spec.update({k: v for k, v in fields.items() if v is not None})
        return Fault(json.loads(self._native.inject_fault(json.dumps(spec))))

    def faults(self) -> List[Fault]:
        """The armed faults, with the times each has left."""
        return [Fault(f) for f in json.loads(self._native.faults())]

    def clear_faults(self) -> None:
        """Disarms every fault."""
        self._native.clear_faults()

    def sink(self, name: str) -> List[SinkEntry]:
        """What the built-in webhook sink ``name`` received, oldest first: point an endpoint at
        ``f"{emu.base_url}/_emulator/sink/{name}"`` to test deliveries with no server."""
        return [SinkEntry(e) for e in json.loads(self._native.sink(name))]

    def clear_sink(self, name: str) -> None:
        """Forgets what sink ``name`` received."""
        self._native.clear_sink(name)

    def requests(
        self,
        *,
        sandbox: Optional[SandboxRef] = None,
        method: Optional[str] = None,
        path_prefix: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[JournalEntry]:
        """One page of the request journal, oldest first, filtered. Every attempt of one SDK
        call shares its ``request_id`` (and idempotency key), so ``request_id=`` shows each
        attempt of a call and which one was replayed."""
        query = {
            "sandbox_id": _sandbox_id(sandbox),
            "method": method,
            "path_prefix": path_prefix,
            "status": status,
            "request_id": request_id,
            "idempotency_key": idempotency_key,
            "limit": limit,
            "cursor": cursor,
        }
        raw = json.loads(self._native.requests(json.dumps({k: v for k, v in query.items() if v is not None})))
        return Page([JournalEntry(e) for e in raw["data"]], raw.get("next_cursor"))

    def iter_requests(
        self,
        *,
        sandbox: Optional[SandboxRef] = None,
        method: Optional[str] = None,
        path_prefix: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Iterator[JournalEntry]:
        """Every entry of :meth:`requests`, page after page (``limit`` is the page size)."""
        sandbox_id = _sandbox_id(sandbox)
        pages = 0
        while True:
            page = self.requests(
                sandbox=sandbox_id,
                method=method,
                path_prefix=path_prefix,
                status=status,
                request_id=request_id,
                idempotency_key=idempotency_key,
                limit=limit,
                cursor=cursor,
            )
            pages += 1
            yield from page.data
            next_cursor = _next_cursor(page, cursor, pages)
            if next_cursor is None:
                return
            cursor = next_cursor

    def request(self, id: str) -> JournalEntry:
        """One journal entry by its id."""
        return JournalEntry(json.loads(self._native.request(id)))

    def clear_requests(self) -> None:
        """Empties the request journal."""
        self._native.clear_requests()

    def load_fixtures(
        self, document: Union[Mapping[str, Any], str, "os.PathLike[str]"]
    ) -> List[Tuple[Client, SandboxCreated]]:
        """Creates the sandboxes of a fixtures document (the JSON that ``twh-emulator serve
        --fixtures FILE`` reads: a mapping, or the path of such a file), all or nothing, and
        returns each with a ready :class:`Client` using its secret key, in the document's order."""
        if isinstance(document, Mapping):
            text = json.dumps(document)
        else:
            with open(os.fspath(document), encoding="utf-8") as f:
                text = f.read()
        return [(Client._wrap(native), SandboxCreated(json.loads(s))) for native, s in self._native.load_fixtures(text)]

    def stop(self) -> None:
        """Stops accepting, lets in-flight requests finish. Idempotent. A connected handle
        stops nothing: it is only closed (the other process serves on)."""
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
        return f"twh.Emulator(base_url={self.base_url!r}, running={self.running}, connected={self.connected})"
