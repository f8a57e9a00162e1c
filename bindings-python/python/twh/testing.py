"""pytest fixtures (a pytest plugin, registered through the ``pytest11`` entry point):

- ``twh_emulator``: one in-process emulator per test session;
- ``twh_client``: a ready :class:`twh.Client` on a fresh sandbox, per test;
- ``twh_async_client``: the same as a :class:`twh.AsyncClient`.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from ._async_client import AsyncClient
from ._emulator import Emulator
from ._sync_client import Client

__all__ = ["twh_emulator", "twh_client", "twh_async_client"]


@pytest.fixture(scope="session")
def twh_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def twh_client(twh_emulator: Emulator) -> Client:
    return twh_emulator.create_sandbox()


@pytest.fixture
def twh_async_client(twh_emulator: Emulator) -> AsyncClient:
    return twh_emulator.create_async_sandbox()
