"""Per-call control (SDK.md "Per-call control"): ``with_options``, ``last_response`` on results
and errors, hooks and the ``twh`` logger, and the problem's ``detail`` as ``message``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import List

import pytest

import twh


def test_with_options_times_out_and_the_original_keeps_its_settings(twh_emulator: twh.Emulator) -> None:
    client = twh_emulator.create_sandbox()
    quick = client.with_options(timeout=0.3, max_retries=0)
    twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000)
    started = time.monotonic()
    with pytest.raises(twh.APITimeoutError) as e:
        quick.get_sandbox()
    took = time.monotonic() - started
    assert 0.25 <= took < 1.5, took
    assert e.value.attempts == 1
    twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000)
    client.get_sandbox()  # the original waits the delay out (30 s timeout)
    with pytest.raises(twh.ConfigurationError):
        client.with_options(max_retries=11)


def test_async_with_options_times_out(twh_emulator: twh.Emulator) -> None:
    async def main() -> None:
        client = twh_emulator.create_async_sandbox().with_options(timeout=0.3, max_retries=0)
        twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000)
        started = time.monotonic()
        with pytest.raises(twh.APITimeoutError):
            await client.get_sandbox()
        assert time.monotonic() - started < 1.5

    asyncio.run(main())


def test_results_and_errors_carry_their_response(twh_emulator: twh.Emulator) -> None:
    client = twh_emulator.create_sandbox()
    item = client.create_item(sku="META-1", name="Mug", idempotency_key="meta-1")
    r = item.last_response
    assert r is not None and r.status == 201
    assert r.request_id is not None and r.request_id.startswith("req_")
    assert r.headers["etag"] == item.etag
    assert r.rate_limit is not None and r.rate_limit.remaining < r.rate_limit.limit
    assert not r.idempotent_replayed
    again = client.create_item(sku="META-1", name="Mug", idempotency_key="meta-1")
    assert again.last_response is not None and again.last_response.idempotent_replayed
    page = client.list_items()
    assert page.last_response is not None and page.last_response.status == 200
    changed = client.update_item_with(item.id, lambda current: {"name": "Renamed"})
    assert changed.last_response is not None and changed.last_response.status == 200
    assert changed.last_response.headers["etag"] == changed.etag

    with pytest.raises(twh.NotFoundError) as e:
        client.get_item("itm_missing")
    err = e.value
    assert err.last_response is not None and err.last_response.status == 404
    assert err.last_response.request_id == err.request_id
    assert err.last_response.rate_limit is not None
    # message is the problem's detail; str() keeps the full description.
    assert "404" not in err.message and err.message
    assert "404" in str(err) and err.message in str(err)


def test_a_long_retry_after_raises_at_once() -> None:
    with twh.Emulator(free_quotas={"api_requests": 1}) as emu:
        client = emu.create_sandbox()
        client.get_sandbox()
        started = time.monotonic()
        with pytest.raises(twh.QuotaExceededError) as e:
            client.get_sandbox()
        assert time.monotonic() - started < 1.0
        assert e.value.retry_after is not None and e.value.retry_after > 60
        assert e.value.attempts == 1


def test_hooks_and_logging_see_every_attempt(twh_emulator: twh.Emulator, caplog: pytest.LogCaptureFixture) -> None:
    client = twh_emulator.create_sandbox()
    requests: List[twh.Attempt] = []
    responses: List[twh.Attempt] = []
    hooked = client.with_options(on_request=requests.append, on_response=responses.append)
    twh_emulator.inject_fault("error_before_commit", method="POST", path_prefix="/v1/items", times=2, status=503)
    with caplog.at_level(logging.DEBUG, logger="twh"):
        hooked.create_item(sku="HOOK-1", name="Mug")
        client.get_sandbox()  # no hooks, but logged: the logger is at DEBUG
    assert [a.attempt for a in requests] == [1, 2, 3]
    assert len({a.idempotency_key for a in requests}) == 1 and requests[0].idempotency_key
    assert [a.status for a in responses] == [503, 503, 201]
    assert all(a.elapsed is not None and a.method == "POST" for a in responses)
    lines = [r.getMessage() for r in caplog.records if r.name == "twh"]
    assert len(lines) == 4, lines
    assert all("/v1/" in line and "request req_" in line for line in lines), lines
    assert "POST /v1/items -> 503 (attempt 1" in lines[0], lines
    assert not any("sk_test_" in line for line in lines)
    assert not any("sk_test_" in repr(a.__slots__) for a in requests)


def test_ctrl_c_interrupts_a_blocking_call(twh_emulator: twh.Emulator) -> None:
    import signal
    import threading

    client, details = twh_emulator.create_sandbox_with_details()
    # Scoped to this sandbox: a request of another test still in flight cannot take it.
    twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000, sandbox=details)
    timer = threading.Timer(0.1, lambda: signal.raise_signal(signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        client.get_sandbox()
    assert time.monotonic() - started < 0.5
    timer.join()


def test_a_cancelled_asyncio_task_ends_at_once(twh_emulator: twh.Emulator) -> None:
    async def main() -> None:
        client = twh_emulator.create_async_sandbox()
        twh_emulator.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000)
        task = asyncio.ensure_future(client.get_sandbox())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5

    asyncio.run(main())


def test_a_cancelled_asyncio_call_is_dropped_natively(twh_emulator: twh.Emulator) -> None:
    """Cancelling the task drops the native call (pyo3-async-runtimes drops the Rust future when
    the asyncio future is cancelled): a create the server delays 2 s is never made."""

    async def main() -> None:
        _, details = twh_emulator.create_sandbox_with_details()
        client = twh.AsyncClient(api_key=details.secret_key, base_url=twh_emulator.base_url)
        twh_emulator.inject_fault("delay", method="POST", path_prefix="/v1/items", delay_ms=2000, sandbox=details)
        task = asyncio.ensure_future(client.create_item(sku="CANCEL-1", name="Mug"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Had the native call kept running, the item would exist after the 2 s delay.
        await asyncio.sleep(2.5)
        page = await client.list_items(sku="CANCEL-1")
        assert page.data == []

    asyncio.run(main())
