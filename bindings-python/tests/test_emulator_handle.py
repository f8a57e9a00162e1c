"""The emulator handle's control plane (docs/guide/emulator.md): the sink,
clocks, faults, the request journal and fixtures, in-process and through ``Emulator.connect``
to an emulator another process serves."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest

import twh
from twh.types import SinkEntry


def _emulator_binary() -> Optional[str]:
    """`twh-emulator` of this workspace (TWH_EMULATOR_BIN, the PATH, or the workspace's target dir)."""
    given = os.environ.get("TWH_EMULATOR_BIN")
    if given:
        return given
    found = shutil.which("twh-emulator")
    if found:
        return found
    repo = Path(__file__).resolve().parents[2]
    for target in (os.environ.get("CARGO_TARGET_DIR"), str(repo / "target")):
        if target and (Path(target) / "debug" / "twh-emulator").exists():
            return str(Path(target) / "debug" / "twh-emulator")
    return None


class Served:
    """An emulator of another process: `twh-emulator serve --port 0 [--admin-token T]` when the
    binary is at hand, else a second Python serving `twh.Emulator()` (no admin token then)."""

    def __init__(self, admin_token: Optional[str]) -> None:
        binary = _emulator_binary()
        if binary is not None:
            args = [binary, "serve", "--port", "0", "--log", "warn"]
            if admin_token:
                args += ["--admin-token", admin_token]
            self.admin_token = admin_token
            prefix = "export TWH_BASE_URL="
        else:
            args = [sys.executable, "-u", "-c", "import time, twh\nemu = twh.Emulator()\nprint('URL=' + emu.base_url, flush=True)\ntime.sleep(600)"]
            self.admin_token = None
            prefix = "URL="
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.base_url = ""
        for _ in range(20):
            line = self.process.stdout.readline()
            if line.startswith(prefix):
                self.base_url = line[len(prefix) :].strip()
                break
        assert self.base_url, "the served emulator printed its URL"

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served("handle-test-admin-token")
    try:
        yield s
    finally:
        s.close()


def _sink_entries(emu: twh.Emulator, name: str, count: int) -> List[SinkEntry]:
    deadline = time.monotonic() + 10
    while True:
        entries = emu.sink(name)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def every_method(emu: twh.Emulator) -> None:
    client, details = emu.create_sandbox_with_details()
    assert client.get_sandbox().id == details.id

    # The sink: what an endpoint pointed at it received, verifiable with the endpoint's secret.
    sink = "py-handle-" + details.id[4:]
    endpoint = client.create_webhook_endpoint(url=f"{emu.base_url}/_emulator/sink/{sink}", event_types=["item.created"])
    item = client.create_item(sku="SINK-1", name="Sink")
    entries = _sink_entries(emu, sink, 1)
    assert len(entries) == 1, entries
    assert isinstance(entries[0].received_at, dt.datetime)
    event = twh.webhooks.verify(entries[0].body, entries[0].headers, endpoint.secret)
    assert event.type == "item.created" and event.data["id"] == item.id
    emu.clear_sink(sink)
    assert emu.sink(sink) == []
    with pytest.raises(twh.InvalidRequestError):
        emu.sink("../escape")

    # The clock, by seconds and by a timedelta with a fraction.
    before = emu.clock().now
    after = emu.advance_clock(3600)
    assert after >= before + dt.timedelta(hours=1)
    later = emu.advance_clock(dt.timedelta(seconds=1.5))
    assert later >= after + dt.timedelta(seconds=1.5)

    # Faults: armed, listed with what is left, fired, cleared.
    fault = emu.inject_fault("error_before_commit", method="GET", path_prefix="/v1/plans", times=2)
    assert [f.id for f in emu.faults()] == [fault.id]
    no_retry = client.with_options(max_retries=0)
    with pytest.raises(twh.ServerError):
        no_retry.list_plans()
    assert emu.faults()[0].remaining == 1
    emu.clear_faults()
    assert emu.faults() == []
    no_retry.list_plans()
    # A bad fault is the server's validation problem, and nothing is armed.
    with pytest.raises(twh.ValidationError):
        emu.inject_fault("delay", delay_ms=600_000)
    assert emu.faults() == []

    journal(emu, client, details)
    fixtures(emu)


def journal(emu: twh.Emulator, client: twh.Client, details: twh.types.SandboxCreated) -> None:
    page = emu.requests(sandbox=details, method="POST", path_prefix="/v1/items")
    assert len(page) == 1, page.data
    entry = page[0]
    assert (entry.method, entry.path, entry.status, entry.sandbox_id) == ("POST", "/v1/items", 201, details.id)
    assert not entry.idempotent_replayed and entry.fault is None
    assert isinstance(entry.at, dt.datetime) and entry.duration_us >= 0
    assert entry.request.body["sku"] == "SINK-1"
    assert emu.request(entry.id).to_dict() == entry.to_dict()

    # A call whose first attempt failed after commit: two attempts, one request id, the second replayed.
    emu.inject_fault("error_after_commit", method="POST", path_prefix="/v1/locations")
    client.create_location(code="J-1", name="Journal", idempotency_key="py-journal-1")
    attempts = emu.requests(sandbox=details.id, idempotency_key="py-journal-1").data
    assert [(e.status, e.idempotent_replayed, e.fault is not None) for e in attempts] == [(500, False, True), (201, True, False)]
    assert attempts[0].request_id == attempts[1].request_id
    same_call = emu.requests(request_id=attempts[0].request_id).data
    assert [e.id for e in same_call] == [e.id for e in attempts]

    # Paging one at a time sees every entry once, in order.
    everything = emu.requests(sandbox=details.id, limit=100).data
    assert len(everything) >= 4
    assert [e.id for e in emu.iter_requests(sandbox=details.id, limit=1)] == [e.id for e in everything]
    # The sandbox may be named by its client too (which asks it for its id).
    assert entry.id in [e.id for e in emu.requests(sandbox=client, limit=100)]
    with pytest.raises(twh.InvalidRequestError):
        emu.requests(limit=0)
    with pytest.raises(twh.ValidationError):
        emu.requests(cursor="not-a-cursor")
    emu.clear_requests()
    assert emu.requests(sandbox=details.id).data == []


def fixtures(emu: twh.Emulator) -> None:
    key = "sk_test_" + uuid.uuid4().hex

    def document(shipped: int) -> Dict[str, Any]:
        return {
            "sandboxes": [
                {
                    "name": "fixture shop",
                    "secret_key": key,
                    "items": [{"sku": "FIX-1", "name": "Fixed"}],
                    "locations": [{"code": "WH", "name": "Warehouse"}],
                    "movements": [
                        {"type": "receipt", "sku": "FIX-1", "location": "WH", "quantity": 10},
                        {"type": "shipment", "sku": "FIX-1", "location": "WH", "quantity": shipped},
                    ],
                }
            ]
        }

    with pytest.raises(twh.ValidationError) as refused:
        emu.load_fixtures(document(11))
    assert any(e["field"].startswith("sandboxes[0].movements[1]") for e in refused.value.errors), refused.value.errors
    [(client, sandbox)] = emu.load_fixtures(document(4))
    assert sandbox.secret_key == key and sandbox.name == "fixture shop"
    assert [i.sku for i in client.list_items()] == ["FIX-1"]
    assert [level.quantity for level in client.list_stock_levels()] == [6]
    with pytest.raises(twh.ConflictError) as taken:
        emu.load_fixtures(document(4))
    assert taken.value.code == "key_taken"


def test_every_method_in_process() -> None:
    with twh.Emulator() as emu:
        assert not emu.connected
        every_method(emu)


def test_connect_to_an_emulator_of_this_process() -> None:
    with twh.Emulator() as server:
        with twh.Emulator.connect(server.base_url) as emu:
            assert emu.connected and emu.base_url == server.base_url
            every_method(emu)
        # Closing a connected handle stopped nothing.
        assert not emu.running
        assert twh.Emulator.connect(server.base_url).create_sandbox().list_items().data == []


def test_connect_to_a_served_emulator(served: Served) -> None:
    emu = twh.Emulator.connect(served.base_url, admin_token=served.admin_token)
    every_method(emu)
    if served.admin_token is not None:
        with pytest.raises(twh.AuthenticationError):
            twh.Emulator.connect(served.base_url)
        with pytest.raises(twh.AuthenticationError):
            twh.Emulator.connect(served.base_url, admin_token="wrong")


def test_connect_to_nothing_is_a_connection_error() -> None:
    with pytest.raises(twh.APIConnectionError):
        twh.Emulator.connect("http://127.0.0.1:9")


def test_a_stopped_handle_refuses_calls() -> None:
    emu = twh.Emulator()
    emu.stop()
    with pytest.raises(twh.ConfigurationError):
        emu.clock()


def test_a_deterministic_seed_repeats_ids_and_starts_the_clock_in_2030() -> None:
    def run(seed: int) -> "tuple[str, str, str]":
        with twh.Emulator(deterministic=seed) as emu:
            client = emu.create_sandbox()
            item = client.create_item(sku="SEEDED-1", name="Seeded")
            return client.get_sandbox().id, item.id, emu.clock().to_dict()["now"]

    first, again, other = run(42), run(42), run(43)
    assert first == again
    assert first[:2] != other[:2]
    assert first[2].startswith("2030-01-01T00:00:00")


def test_journal_size_bounds_the_request_journal_and_zero_turns_it_off() -> None:
    with twh.Emulator(journal_size=2) as emu:
        client = emu.create_sandbox()
        for i in range(3):
            client.create_item(sku=f"J-{i}", name="Journal")
        kept = emu.requests(limit=100).data
        assert [e.path for e in kept] == ["/v1/items", "/v1/items"]
    with twh.Emulator(journal_size=0) as emu:
        emu.create_sandbox().create_item(sku="J-0", name="Journal")
        assert emu.requests(limit=100).data == []
