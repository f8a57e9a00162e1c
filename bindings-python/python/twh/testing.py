"""pytest fixtures (a pytest plugin, registered through the ``pytest11`` entry point):

- ``twh_emulator``: one in-process emulator per test session;
- ``twh_sandbox``: a fresh sandbox per test (:class:`Sandbox`): its client, its details, and the
  control-plane calls that concern it alone (its own clock, faults scoped to it, its requests);
- ``twh_client``: the ready :class:`twh.Client` of that sandbox;
- ``twh_async_client``: the same as a :class:`twh.AsyncClient`.

Tests sharing the session's emulator are hermetic: every sandbox has its own clock, so
``twh_sandbox.advance_clock(...)`` (or ``twh_emulator.advance_clock(..., sandbox=twh_client)``)
moves this test's time and no other's. (``twh_emulator.advance_clock(...)`` without a sandbox
moves every sandbox's: avoid it in shared sessions.)
"""

from __future__ import annotations

import datetime as _dt
from typing import Iterator, Optional, Union

import pytest

from ._async_client import AsyncClient
from ._emulator import Emulator
from ._sync_client import Client
from ._transport import Page
from .types import ClockState, Fault, FaultAction, JournalEntry, SandboxCreated

__all__ = ["Sandbox", "twh_emulator", "twh_sandbox", "twh_client", "twh_async_client"]


class Sandbox:
    """One test's sandbox on the shared emulator."""

    def __init__(self, emulator: Emulator, client: Client, details: SandboxCreated) -> None:
        #: The shared emulator (for what is not this sandbox's: sinks, say).
        self.emulator = emulator
        #: A client with the sandbox's secret key.
        self.client = client
        #: Its id, name, plan and both keys.
        self.details = details

    @property
    def id(self) -> str:
        """``sbx_…``"""
        return self.details.id

    def async_client(self) -> AsyncClient:
        """An :class:`AsyncClient` of this sandbox (its secret key)."""
        return AsyncClient(api_key=self.details.secret_key, base_url=self.emulator.base_url)

    def clock(self) -> ClockState:
        """This sandbox's clock."""
        return self.emulator.clock(sandbox=self.id)

    def advance_clock(self, by: Union[float, _dt.timedelta]) -> _dt.datetime:
        """Moves this sandbox's clock (and only its) forward; answers its new time."""
        return self.emulator.advance_clock(by, sandbox=self.id)

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
        """Arms a fault that matches this sandbox's requests only."""
        return self.emulator.inject_fault(
            action,
            times=times,
            path_prefix=path_prefix,
            method=method,
            status=status,
            delay_ms=delay_ms,
            sandbox=self.id,
        )

    def requests(
        self,
        *,
        method: Optional[str] = None,
        path_prefix: Optional[str] = None,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[JournalEntry]:
        """A page of the request journal: this sandbox's requests only."""
        return self.emulator.requests(
            sandbox=self.id,
            method=method,
            path_prefix=path_prefix,
            status=status,
            request_id=request_id,
            idempotency_key=idempotency_key,
            limit=limit,
            cursor=cursor,
        )

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, base_url={self.emulator.base_url!r})"


@pytest.fixture(scope="session")
def twh_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def twh_sandbox(twh_emulator: Emulator) -> Sandbox:
    client, details = twh_emulator.create_sandbox_with_details()
    return Sandbox(twh_emulator, client, details)


@pytest.fixture
def twh_client(twh_sandbox: Sandbox) -> Client:
    return twh_sandbox.client


@pytest.fixture
def twh_async_client(twh_sandbox: Sandbox) -> AsyncClient:
    return twh_sandbox.async_client()
