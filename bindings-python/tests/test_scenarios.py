"""The Rust SDK's scenarios, through both clients: each test runs once with ``twh.Client`` and
once with ``twh.AsyncClient`` (the scenario is written once; ``a()`` awaits what needs it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from typing import Any, List

import pytest
from _support import Receiver, a, client_of, collect, make_client

import twh

KINDS = ["sync", "async"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def item_and_location(client: Any, sku: str = "MUG-BLU") -> "tuple[twh.types.Item, twh.types.Location]":
    item = await a(client.create_item(sku=sku, name="Mug, blue"))
    location = await a(client.create_location(code=f"WH-{sku}", name="Main warehouse"))
    return item, location


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("action", ["error_after_commit", "drop_connection_after_commit"])
def test_a_fault_after_commit_leaves_exactly_one_ledger_entry(twh_emulator: twh.Emulator, kind: str, action: Any) -> None:
    async def scenario() -> None:
        client = client_of(twh_emulator, kind)
        item, loc = await item_and_location(client)
        twh_emulator.inject_fault(action, method="POST", path_prefix="/v1/stock-movements", times=1, status=500)
        moved = await a(client.create_movement(
            type="receipt", item_id=item.id, location_id=loc.id, quantity=100, idempotency_key=f"po-{kind}-{action}"
        ))
        ledger = await collect(client.iter_movements(item_id=item.id, location_id=loc.id))
        assert [m.id for m in ledger] == [moved.id], "exactly one ledger entry"
        level = await a(client.get_stock_level(item_id=item.id, location_id=loc.id))
        assert (level.quantity, level.version, level.etag) == (100, 1, '"1"')
        # The same key and body: the same movement again, nothing written.
        again = await a(client.create_movement(
            type="receipt", item_id=item.id, location_id=loc.id, quantity=100, idempotency_key=f"po-{kind}-{action}"
        ))
        assert again.id == moved.id
        # The same key, another body: refused.
        with pytest.raises(twh.IdempotencyKeyReusedError) as e:
            await a(client.create_movement(
                type="receipt", item_id=item.id, location_id=loc.id, quantity=7, idempotency_key=f"po-{kind}-{action}"
            ))
        assert (e.value.status, e.value.code) == (422, "idempotency_key_reused")
        assert len(await collect(client.iter_movements(item_id=item.id))) == 1

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_racing_update_with_applies_both_changes(twh_emulator: twh.Emulator, kind: str) -> None:
    rounds = 15
    client = client_of(twh_emulator, kind)

    def bump(item: twh.types.Item) -> twh.params.ItemChanges:
        return {"low_stock_threshold": (item.low_stock_threshold or 0) + 1}

    def rename(loc: twh.types.Location) -> twh.params.LocationChanges:
        return {"name": loc.name + "+"}

    async def setup() -> "tuple[twh.types.Item, twh.types.Location]":
        item = await a(client.create_item(sku="RACE-1", name="Race", low_stock_threshold=0))
        loc = await a(client.create_location(code="RACE-L", name="L"))
        return item, loc

    item, loc = run(setup())
    if kind == "sync":
        def writer() -> None:
            for _ in range(rounds):
                client.update_item_with(item.id, bump)
                client.update_location_with(loc.id, rename)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    else:
        async def writer_async() -> None:
            for _ in range(rounds):
                await client.update_item_with(item.id, bump)
                await client.update_location_with(loc.id, rename)

        async def race() -> None:
            await asyncio.gather(writer_async(), writer_async())

        run(race())

    async def check() -> None:
        after = await a(client.get_item(item.id))
        assert after.low_stock_threshold == 2 * rounds, "no lost update"
        assert after.version == item.version + 2 * rounds
        loc_after = await a(client.get_location(loc.id))
        assert loc_after.name == "L" + "+" * (2 * rounds)

    run(check())


@pytest.mark.parametrize("kind", KINDS)
def test_update_with_gives_up_after_its_bound(twh_emulator: twh.Emulator, kind: str) -> None:
    """A change that always loses the race: the loop stops after ``attempts_max`` rounds."""
    sync_client, details = twh_emulator.create_sandbox_with_details()
    client = sync_client if kind == "sync" else twh.AsyncClient(api_key=details.secret_key, base_url=twh_emulator.base_url)
    item = sync_client.create_item(sku="LOSER", name="Loser")
    calls: List[int] = []

    def change(current: twh.types.Item) -> twh.params.ItemChanges:
        calls.append(current.version)
        sync_client.update_item(item.id, etag=current.etag, name=f"meddled {len(calls)}")  # now it is stale
        return {"low_stock_threshold": 1}

    async def scenario() -> None:
        with pytest.raises(twh.PreconditionFailedError) as e:
            await a(client.update_item_with(item.id, change, attempts_max=4))
        assert len(calls) == 4
        assert e.value.current_etag == f'"{item.version + 4}"'

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_paging_over_250_items_yields_each_once_in_order(twh_emulator: twh.Emulator, kind: str) -> None:
    async def scenario() -> None:
        client = client_of(twh_emulator, kind)
        for i in range(250):
            await a(client.create_item(sku=f"P-{i:03}", name=f"Item {i}"))
        skus = [it.sku for it in await collect(client.iter_items(limit=100))]
        assert skus == [f"P-{i:03}" for i in range(250)]
        # One page at a time: a cursor until the last page.
        pages, cursor = [], None
        while True:
            page = await a(client.list_items(limit=100, cursor=cursor))
            pages.append(len(page))
            if not page.has_more:
                break
            cursor = page.next_cursor
        assert pages == [100, 100, 50]
        assert [it.sku for it in await collect(client.iter_items(q="p-24"))] == [f"P-24{i}" for i in range(10)]

    run(scenario())


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    return url


@pytest.mark.parametrize("kind", KINDS)
def test_every_error_class_is_produced_and_matched(twh_emulator: twh.Emulator, kind: str) -> None:
    emu = twh_emulator

    async def scenario() -> None:
        sync_client, created = emu.create_sandbox_with_details()
        key, url = created.secret_key, emu.base_url
        client = make_client(kind, api_key=key, base_url=url)
        item, loc = await item_and_location(client)

        def check(e: twh.TWHError, status: int, code: str) -> None:
            assert (e.status, e.code) == (status, code), repr(e)
            assert e.request_id and e.request_id.startswith("req_"), repr(e)

        with pytest.raises(twh.AuthenticationError) as auth:
            await a(make_client(kind, api_key="sk_test_nobody", base_url=url).get_sandbox())
        check(auth.value, 401, "unauthenticated")

        reader = make_client(kind, api_key=created.restricted_key, base_url=url)
        assert len(await a(reader.list_items())) == 1
        with pytest.raises(twh.PermissionDeniedError) as perm:
            await a(reader.create_item(sku="NOPE", name="x"))
        check(perm.value, 403, "forbidden")

        with pytest.raises(twh.NotFoundError) as nf:
            await a(client.get_item("itm_doesnotexist"))
        check(nf.value, 404, "not_found")
        with pytest.raises(twh.NotFoundError):
            await a(client_of(emu, kind).get_item(item.id))  # another tenant's

        with pytest.raises(twh.ConflictError) as conflict:
            await a(client.create_item(sku="MUG-BLU", name="again"))
        check(conflict.value, 409, "sku_taken")
        with pytest.raises(twh.ConflictError) as short:
            await a(client.create_movement(type="shipment", item_id=item.id, location_id=loc.id, quantity=1))
        check(short.value, 409, "insufficient_stock")

        await a(client.create_movement(type="receipt", item_id=item.id, location_id=loc.id, quantity=1, idempotency_key="k"))
        with pytest.raises(twh.IdempotencyKeyReusedError) as reused:
            await a(client.create_movement(type="receipt", item_id=item.id, location_id=loc.id, quantity=2, idempotency_key="k"))
        check(reused.value, 422, "idempotency_key_reused")

        with pytest.raises(twh.ValidationError) as invalid:
            await a(client.create_movement(type="receipt", item_id=item.id, location_id=loc.id, quantity=0))
        check(invalid.value, 422, "validation_failed")
        assert any(f["field"] == "quantity" for f in invalid.value.errors), invalid.value.errors
        with pytest.raises(twh.ValidationError) as cursor:
            await a(client.list_items(cursor="not-a-cursor"))
        check(cursor.value, 400, "invalid_cursor")

        with pytest.raises(twh.PreconditionFailedError) as stale:
            await a(client.update_item(item.id, etag='"40"', name="stale"))
        check(stale.value, 412, "precondition_failed")
        assert stale.value.current_etag == item.etag

        # 428: the SDK always sends If-Match, so a fault makes the emulator answer 428.
        emu.inject_fault("error_before_commit", method="PATCH", path_prefix="/v1/items", status=428, times=1)
        with pytest.raises(twh.PreconditionRequiredError) as required:
            await a(client.update_item(item.id, etag="*", name="x"))
        assert required.value.status == 428

        fast = make_client(kind, api_key=key, base_url=url, max_retries=1)
        emu.inject_fault("error_before_commit", method="GET", path_prefix="/v1/sandbox", status=429, times=2)
        with pytest.raises(twh.RateLimitedError) as limited:
            await a(fast.get_sandbox())
        assert (limited.value.status, limited.value.attempts) == (429, 2)
        assert not isinstance(limited.value, twh.QuotaExceededError)

        emu.inject_fault("error_before_commit", method="GET", path_prefix="/v1/items", status=503, times=2)
        with pytest.raises(twh.ServerError) as server:
            await a(fast.list_items())
        assert (server.value.status, server.value.attempts) == (503, 2)

        slow = make_client(kind, api_key=key, base_url=url, timeout=0.2, max_retries=0)
        emu.inject_fault("delay", method="GET", path_prefix="/v1/locations", delay_ms=2000, times=1)
        with pytest.raises(twh.APITimeoutError) as timeout:
            await a(slow.get_location(loc.id))
        assert timeout.value.attempts == 1 and isinstance(timeout.value, twh.APIConnectionError)

        nowhere = make_client(kind, api_key="sk_test_x", base_url=closed_port_url(), max_retries=1)
        with pytest.raises(twh.APIConnectionError) as refused:
            await a(nowhere.get_sandbox())
        assert refused.value.attempts == 2 and not isinstance(refused.value, twh.APITimeoutError)

        # A body the API refuses is the server's to judge (the body is sent as given): 422.
        with pytest.raises(twh.ValidationError) as bad:
            await a(client.create_item(sku="has spaces", name="x"))
        check(bad.value, 422, "validation_failed")
        assert [f["field"] for f in bad.value.errors] == ["sku"] and bad.value.attempts == 1
        # An argument the SDK cannot send is refused before anything is sent.
        with pytest.raises(twh.InvalidRequestError) as unsendable:
            await a(client.update_item(item.id, etag="not an etag", name="x"))
        assert unsendable.value.attempts == 0

        with pytest.raises(twh.InvalidRequestError):
            await a(client.update_item(item.id, etag=None, name="no etag"))

        with pytest.raises(twh.ConfigurationError):
            make_client(kind, api_key=key, base_url="ftp://example.com")

    run(scenario())


def test_quota_exceeded_is_its_own_class(twh_emulator: twh.Emulator) -> None:
    """Filling the free plan's ledger_lines quota (20,000) with batches of 1,000."""
    client = twh_emulator.create_sandbox()
    item = client.create_item(sku="Q", name="Q")
    loc = client.create_location(code="Q", name="Q")
    receipt: twh.params.MovementParams = {"type": "receipt", "item_id": item.id, "location_id": loc.id, "quantity": 1}
    for _ in range(20):
        client.create_movement_batch([receipt] * 1000)
    with pytest.raises(twh.QuotaExceededError) as e:
        client.create_movement(type="receipt", item_id=item.id, location_id=loc.id, quantity=1)
    assert (e.value.status, e.value.code) == (429, "quota_exceeded")
    assert e.value.retry_after is not None and e.value.retry_after > 0
    assert e.value.attempts == 1, "a Retry-After beyond the cap is not waited for"
    assert isinstance(e.value, twh.RateLimitedError)


@pytest.mark.parametrize("kind", KINDS)
def test_results_are_typed(twh_emulator: twh.Emulator, kind: str) -> None:
    async def scenario() -> None:
        client = client_of(twh_emulator, kind)
        item, loc = await item_and_location(client)
        assert isinstance(item, twh.types.Item) and isinstance(item.created_at, dt.datetime)
        assert item.created_at.tzinfo is not None
        moved = await a(client.create_movement(
            type="transfer", item_id=item.id, from_location_id=loc.id,
            to_location_id=(await a(client.create_location(code="B", name="B"))).id,
            quantity=2, allow_negative=True, metadata={"po": 7},
        ))
        assert isinstance(moved, twh.types.Movement)
        assert [type(line).__name__ for line in moved.lines] == ["MovementLine", "MovementLine"]
        assert [line.delta for line in moved.lines] == [-2, 2]
        assert moved.metadata == {"po": 7}
        d = moved.to_dict()
        assert d["lines"][0]["delta"] == -2 and isinstance(d["created_at"], str)
        assert twh.types.Movement.from_dict(d) == moved
        with pytest.raises(AttributeError):
            moved.id = "x"  # type: ignore[misc]
        # Conditional reads: None while the copy is current.
        assert await a(client.get_item_if_changed(item.id, etag=item.etag)) is None
        changed = await a(client.update_item(item.id, etag=item.etag, name="Renamed"))
        fresh = await a(client.get_item_if_changed(item.id, etag=item.etag))
        assert fresh is not None and fresh.name == "Renamed" and fresh.etag == changed.etag
        assert await a(client.get_location_if_changed(loc.id, etag=loc.etag)) is None
        level = await a(client.get_stock_level(item_id=item.id, location_id=loc.id))
        assert await a(client.get_stock_level_if_changed(item_id=item.id, location_id=loc.id, etag=level.etag)) is None
        # as_of: before the first movement, nothing.
        before = await a(client.get_stock_level(item_id=item.id, location_id=loc.id, as_of=item.created_at))
        assert (before.quantity, level.quantity) == (0, -2)

    run(scenario())


def test_async_calls_are_native_awaitables(twh_emulator: twh.Emulator) -> None:
    """40 calls held 500 ms each by the emulator run at once on the Rust runtime: no thread
    per call (a default executor of min(32, cores + 4) threads would take several rounds)."""
    calls = 40

    async def scenario() -> None:
        client = twh_emulator.create_async_sandbox()
        call = client.get_sandbox()
        assert asyncio.iscoroutine(call) or asyncio.isfuture(call)
        await call
        threads_before = threading.active_count()
        twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/items", delay_ms=500, times=calls)
        t0 = time.monotonic()
        pages = await asyncio.gather(*(client.list_items() for _ in range(calls)))
        elapsed = time.monotonic() - t0
        assert len(pages) == calls
        assert elapsed < 2.5, f"{calls} delayed calls took {elapsed:.2f} s: not concurrent"
        assert threading.active_count() == threads_before, "no Python threads were started"
        # Cancelling an awaitable: the caller gets its cancellation, the loop goes on.
        twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=1000, times=1)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get_sandbox(), timeout=0.1)
        assert (await client.get_sandbox()).id

    run(scenario())


def test_requests_carry_the_python_user_agent() -> None:
    receiver = Receiver()
    sandbox = b'{"id":"sbx_1","name":"x","plan":"free","created_at":"2026-01-01T00:00:00Z"}'
    receiver.answer["/v1/sandbox"] = (200, {"Content-Type": "application/json"}, sandbox)
    try:
        got = twh.Client(api_key="sk_test_ua", base_url=receiver.url, user_agent_suffix="shop/2").get_sandbox()
        assert got.id == "sbx_1" and got.created_at.year == 2026
        asyncio.run(a(twh.AsyncClient(api_key="sk_test_ua", base_url=receiver.url).get_sandbox()))
        (h1, _), (h2, _) = receiver.on("/v1/sandbox")
        assert h1["user-agent"] == f"twh-python/{twh.__version__} shop/2"
        assert h2["user-agent"] == f"twh-python/{twh.__version__}"
        assert h1["authorization"] == "Bearer sk_test_ua" and h1["x-request-id"]
    finally:
        receiver.close()


@pytest.mark.parametrize("kind", KINDS)
def test_sandbox_and_keys(twh_emulator: twh.Emulator, kind: str) -> None:
    async def scenario() -> None:
        sync_client, created = twh_emulator.create_sandbox_with_details(name="keys", seed="demo")
        client = make_client(kind, api_key=created.secret_key, base_url=twh_emulator.base_url)
        sandbox = await a(client.get_sandbox())
        assert (sandbox.id, sandbox.name, sandbox.plan) == (created.id, "keys", "free")
        assert len(await a(client.list_items())) > 0, "the demo seed has items"
        rolled = await a(client.roll_api_key())
        assert rolled.secret_key != created.secret_key and isinstance(rolled.previous_key_expires_at, dt.datetime)
        assert (await a(client.with_api_key(rolled.secret_key).get_sandbox())).id == created.id
        await a(client.reset_sandbox())
        assert len(await a(client.list_items())) == 0
        await a(client.delete_sandbox())
        with pytest.raises(twh.AuthenticationError):
            await a(client.with_api_key(rolled.secret_key).get_sandbox())

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_a_sandbox_created_over_http_comes_as_a_client(
    twh_emulator: twh.Emulator, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWH_API_KEY", raising=False)
    cls: Any = twh.Client if kind == "sync" else twh.AsyncClient

    async def scenario() -> None:
        client, created = await a(cls.create_sandbox(base_url=twh_emulator.base_url, name="remote", seed="demo"))
        assert isinstance(client, cls) and isinstance(created, twh.types.SandboxCreated)
        assert created.secret_key.startswith("sk_test_") and created.restricted_key.startswith("rk_test_")
        assert (await a(client.get_sandbox())).id == created.id
        assert len(await a(client.list_items())) > 0, "seeded"
        with pytest.raises(twh.ConfigurationError):
            await a(cls.create_sandbox(base_url="not a url"))
        with pytest.raises(twh.APIConnectionError):
            await a(cls.create_sandbox(base_url=closed_port_url(), max_retries=0))

    run(scenario())
