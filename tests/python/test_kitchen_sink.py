"""The kitchen sink (tests/KITCHEN_SINK.md) in Python: one scenario, step by step, through the
SDK against the in-process emulator. Steps share one emulator and run in order; each test is
one numbered step, so a failure names its step. Run: ``python -m pytest tests/python``."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

import twh
from twh.types import Item, Location, WebhookEndpointWithSecret

QUOTA_LEDGER_LINES = 20_000
BATCH_SIZE = 1_000


class Receiver:
    """Step 4's webhook receiver: records each request; a path answers 500 while it is in
    ``failing``."""

    def __init__(self) -> None:
        self.requests: List[Tuple[str, Dict[str, str], bytes]] = []
        self.failing: Set[str] = set()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = 500 if self.path in outer.failing else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, path: str) -> List[Tuple[Dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.requests if p == path]

    def wait(self, path: str, pred: Any, timeout_s: float = 10.0) -> List[Tuple[Dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = [(h, b) for h, b in self.on(path) if pred(h, b)]
            if got:
                return got
            time.sleep(0.02)
        return []


class State:
    emu: twh.Emulator
    client: twh.Client
    secret_key: str
    sandbox_id: str
    items: Dict[str, Item]
    locations: Dict[str, Location]
    receiver: Receiver
    good: WebhookEndpointWithSecret
    flaky: WebhookEndpointWithSecret
    first_receipt_at: dt.datetime
    usage_ledger_lines: int
    errors_seen: Set[type]


S = State()
S.errors_seen = set()


def seen(error: BaseException) -> None:
    S.errors_seen.add(type(error))


@pytest.fixture(scope="module", autouse=True)
def emulator() -> Iterator[twh.Emulator]:
    S.receiver = Receiver()
    with twh.Emulator() as emu:
        S.emu = emu
        yield emu
    S.receiver.server.shutdown()
    S.receiver.server.server_close()


def test_01_emulator_and_sandbox() -> None:
    S.client, created = S.emu.create_sandbox_with_details(seed="empty", plan="free")
    S.secret_key, S.sandbox_id = created.secret_key, created.id
    assert S.client.get_sandbox().id == created.id
    rolled = S.client.roll_api_key()
    new_client = S.client.with_api_key(rolled.secret_key)
    assert new_client.get_sandbox().id == created.id
    # The old key works for its grace period (24 h of emulator time), then not.
    S.emu.advance_clock(dt.timedelta(hours=24, seconds=1))
    with pytest.raises(twh.AuthenticationError) as e:
        S.client.get_sandbox()
    seen(e.value)
    assert e.value.status == 401 and e.value.code and e.value.request_id
    S.client, S.secret_key = new_client, rolled.secret_key


def test_02_items() -> None:
    c = S.client
    S.items = {
        "SINK-1": c.create_item(sku="SINK-1", name="Sink one", low_stock_threshold=10),
        "SINK-2": c.create_item(sku="SINK-2", name="Sink two"),
        "SINK-3": c.create_item(sku="SINK-3", name="Sink three"),
    }
    with pytest.raises(twh.ConflictError) as e:
        c.create_item(sku="SINK-1", name="again")
    seen(e.value)
    assert e.value.code == "sku_taken"
    got = c.get_item(S.items["SINK-1"].id)
    assert got.etag == S.items["SINK-1"].etag and got.low_stock_threshold == 10
    assert c.get_item_if_changed(got.id, etag=got.etag) is None, "unchanged"
    renamed = c.update_item(got.id, etag=got.etag, name="Sink 1")
    with pytest.raises(twh.PreconditionFailedError) as stale:
        c.update_item(got.id, etag=got.etag, name="stale")
    seen(stale.value)
    assert stale.value.status == 412 and stale.value.current_etag == renamed.etag
    done = c.update_item_with(got.id, lambda item: {"unit": "piece"})
    assert done.unit == "piece" and done.name == "Sink 1"
    three = c.get_item(S.items["SINK-3"].id)
    assert c.archive_item(three.id, etag=three.etag).status == "archived"
    assert [i.sku for i in c.iter_items(status="archived")] == ["SINK-3"]


def test_03_locations() -> None:
    c = S.client
    S.locations = {code: c.create_location(code=code, name=f"Warehouse {code[-1]}") for code in ("WH-A", "WH-B")}
    renamed = c.update_location_with(S.locations["WH-B"].id, lambda loc: {"name": loc.name + " (north)"})
    assert renamed.name == "Warehouse B (north)"


def test_04_webhook_receivers() -> None:
    c, r = S.client, S.receiver
    r.failing.add("/flaky")
    S.good = c.create_webhook_endpoint(url=r.url + "/good", event_types=["stock_movement.created"])
    S.flaky = c.create_webhook_endpoint(url=r.url + "/flaky", event_types=["*"], retry_schedule_seconds=[1] * 7)
    assert S.flaky.retry_schedule_seconds == [1] * 7
    assert {e.id for e in c.iter_webhook_endpoints()} == {S.good.id, S.flaky.id}


def test_05_exactly_once_under_a_fault() -> None:
    c, item, wh_a = S.client, S.items["SINK-1"], S.locations["WH-A"]
    S.emu.inject_fault(
        "error_after_commit", method="POST", path_prefix="/v1/stock-movements", status=500, times=1, sandbox=S.sandbox_id
    )
    moved = c.create_movement(type="receipt", item_id=item.id, location_id=wh_a.id, quantity=100, idempotency_key="sink-po-1")
    # The request journal shows both attempts of that call: one request id, the second replayed.
    attempts = S.emu.requests(sandbox=S.sandbox_id, idempotency_key="sink-po-1").data
    assert [(a.status, a.idempotent_replayed, a.fault is not None) for a in attempts] == [(500, False, True), (201, True, False)]
    assert attempts[0].request_id == attempts[1].request_id
    S.first_receipt_at = moved.created_at
    assert [m.id for m in c.iter_movements(item_id=item.id, location_id=wh_a.id)] == [moved.id]
    level = c.get_stock_level(item_id=item.id, location_id=wh_a.id)
    assert (level.quantity, level.version) == (100, 1)
    again = c.create_movement(type="receipt", item_id=item.id, location_id=wh_a.id, quantity=100, idempotency_key="sink-po-1")
    assert again.id == moved.id
    with pytest.raises(twh.IdempotencyKeyReusedError) as e:
        c.create_movement(type="receipt", item_id=item.id, location_id=wh_a.id, quantity=5, idempotency_key="sink-po-1")
    seen(e.value)
    assert (e.value.status, e.value.code) == (422, "idempotency_key_reused")


def test_06_conditional_and_refused_movements() -> None:
    c, item, wh_a, wh_b = S.client, S.items["SINK-1"], S.locations["WH-A"], S.locations["WH-B"]
    level = c.get_stock_level(item_id=item.id, location_id=wh_a.id)
    c.create_movement(type="shipment", item_id=item.id, location_id=wh_a.id, quantity=30, if_match=level.etag)
    with pytest.raises(twh.PreconditionFailedError) as stale:
        c.create_movement(type="shipment", item_id=item.id, location_id=wh_a.id, quantity=30, if_match=level.etag)
    seen(stale.value)
    with pytest.raises(twh.ConflictError) as short:
        c.create_movement(type="shipment", item_id=item.id, location_id=wh_a.id, quantity=1000)
    seen(short.value)
    assert short.value.code == "insufficient_stock"
    with pytest.raises(twh.ValidationError) as zero:
        c.create_movement(type="receipt", item_id=item.id, location_id=wh_a.id, quantity=0)
    seen(zero.value)
    c.create_movement(type="transfer", item_id=item.id, from_location_id=wh_a.id, to_location_id=wh_b.id, quantity=10)
    adjustment = c.create_movement(type="adjustment", item_id=item.id, location_id=wh_a.id, quantity=-5)
    batch = c.create_movement_batch(
        [{"type": "receipt", "item_id": item.id, "location_id": wh_a.id, "quantity": q} for q in (1, 2, 3)]
    )
    assert len(batch) == 3
    reversal = c.reverse_movement(adjustment.id, reason="miscounted")
    assert reversal.reverses == adjustment.id
    deltas = sum(
        line.delta for m in c.iter_movements(item_id=item.id) for line in m.lines if line.location_id == wh_a.id
    )
    level = c.get_stock_level(item_id=item.id, location_id=wh_a.id)
    assert level.quantity == deltas == 100 - 30 - 10 - 5 + 6 + 5
    before = c.get_stock_level(item_id=item.id, location_id=wh_a.id, as_of=S.first_receipt_at - dt.timedelta(seconds=1))
    assert before.quantity == 0


def test_07_paging() -> None:
    c = S.client
    for i in range(120):
        c.create_item(sku=f"PAGE-{i:03}", name=f"Paged {i}")
    ids = [i.id for i in c.iter_items(limit=50)]
    assert len(ids) == len(set(ids)) == 123
    sizes, cursor = [], None
    while True:
        page = c.list_items(limit=50, cursor=cursor)
        sizes.append(len(page))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sizes == [50, 50, 23]


def test_08_webhooks() -> None:
    c, r, emu = S.client, S.receiver, S.emu
    [(headers, body), *_] = r.wait("/good", lambda h, b: True)
    event = twh.webhooks.verify(body, headers, S.good.secret)
    assert event.type == "stock_movement.created"
    with pytest.raises(twh.WebhookVerificationError):
        twh.webhooks.verify(body.replace(b"receipt", b"shipment", 1), headers, S.good.secret)

    first = c.list_webhook_deliveries(endpoint_id=S.flaky.id, limit=1).data[0]
    for _ in range(30):  # retries 1 s apart: a bounded walk of the emulator clock
        if c.get_webhook_delivery(first.id).status == "dead":
            break
        emu.advance_clock(2)
    dead = c.get_webhook_delivery(first.id)
    assert dead.status == "dead" and len(dead.attempts) == 8
    assert any(True for _ in c.iter_events(type="webhook_delivery.exhausted"))

    r.failing.discard("/flaky")
    assert c.replay_webhook_delivery(first.id).id == first.id
    for _ in range(200):
        if c.get_webhook_delivery(first.id).status == "succeeded":
            break
        time.sleep(0.05)
    assert c.get_webhook_delivery(first.id).status == "succeeded"
    ids = [h["webhook-id"] for h, _ in r.on("/flaky")]
    assert ids.count(first.event_id) == 9, "8 failed attempts and the replay, one webhook-id"

    ping = c.test_webhook_endpoint(S.good.id)
    assert ping.event_type == "ping"
    assert r.wait("/good", lambda h, b: json.loads(b)["type"] == "ping")

    rotated = c.rotate_webhook_secret(S.good.id)
    assert rotated.secret != S.good.secret
    item, wh_a = S.items["SINK-2"], S.locations["WH-A"]
    moved = c.create_movement(type="receipt", item_id=item.id, location_id=wh_a.id, quantity=1)
    [(h, b)] = r.wait("/good", lambda h, b: json.loads(b)["data"].get("id") == moved.id)
    assert twh.webhooks.verify(b, h, rotated.secret).data["id"] == moved.id


def test_09_reconciliation_and_jobs() -> None:
    c, wh_a = S.client, S.locations["WH-A"]
    run = c.create_reconciliation()
    assert run.status == "completed" and run.discrepancies == [] and run.checked > 0
    assert c.get_reconciliation(run.id).id == run.id
    one, two = S.items["SINK-2"], S.items["SINK-1"]
    csv = (
        "type,item_id,location_id,quantity,reference\n"
        f"receipt,{one.id},{wh_a.id},4,imp-1\n"
        f"receipt,{two.id},{wh_a.id},0,imp-2\n"
        f"receipt,{two.id},{wh_a.id},6,imp-3\n"
    )
    job = c.import_movements_csv(csv)
    for _ in range(200):
        job = c.get_job(job.id)
        if job.status not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job.status == "completed_with_errors"
    assert [e.line for e in job.errors] == [3]
    refs = {m.reference for m in c.iter_movements(location_id=wh_a.id) if m.reference}
    assert {"imp-1", "imp-3"} <= refs and "imp-2" not in refs


def test_10_quota_and_invoice() -> None:
    c, item, wh_b = S.client, S.items["SINK-2"], S.locations["WH-B"]
    for endpoint in (S.good, S.flaky):  # 20,000 receipts are not for these receivers
        current = c.get_webhook_endpoint(endpoint.id)
        assert not c.update_webhook_endpoint(endpoint.id, etag=current.etag, enabled=False).enabled
    used = next(m.quantity for m in c.get_usage().meters if m.meter == "ledger_lines")
    left = QUOTA_LEDGER_LINES - used
    receipt: twh.params.MovementParams = {"type": "receipt", "item_id": item.id, "location_id": wh_b.id, "quantity": 1}
    while left > 0:
        n = min(BATCH_SIZE, left)
        c.create_movement_batch([receipt] * n)
        left -= n
    with pytest.raises(twh.QuotaExceededError) as e:
        c.create_movement(type="receipt", item_id=item.id, location_id=wh_b.id, quantity=1)
    seen(e.value)
    assert (e.value.status, e.value.code) == (429, "quota_exceeded") and e.value.retry_after
    assert c.update_subscription("pro").plan == "pro"
    c.create_movement(type="receipt", item_id=item.id, location_id=wh_b.id, quantity=1)
    usage = c.get_usage()
    S.usage_ledger_lines = next(m.quantity for m in usage.meters if m.meter == "ledger_lines")
    assert S.usage_ledger_lines == QUOTA_LEDGER_LINES + 1
    S.emu.advance_clock(usage.period_end - S.emu.advance_clock(0) + dt.timedelta(seconds=1))
    invoices = c.list_invoices().data
    assert len(invoices) == 1
    [line] = [ln for ln in invoices[0].lines if ln.meter == "ledger_lines"]
    assert line.quantity == S.usage_ledger_lines
    assert c.get_invoice(invoices[0].id).id == invoices[0].id


def test_11_every_error_class_seen() -> None:
    c = S.client
    with pytest.raises(twh.NotFoundError) as nf:
        c.get_item("itm_doesnotexist")
    seen(nf.value)
    # Raw: the SDK always sends If-Match, so only a raw PATCH can omit it.
    item = S.items["SINK-2"]
    request = urllib.request.Request(
        f"{S.emu.base_url}/v1/items/{item.id}", method="PATCH", data=b'{"name": "raw"}',
        headers={"Authorization": f"Bearer {S.secret_key}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=10)
    assert raw.value.code == 428 and json.loads(raw.value.read())["code"] == "precondition_required"
    # The SDK's class for 428, from an answer the emulator is told to give.
    S.emu.inject_fault("error_before_commit", method="PATCH", path_prefix="/v1/items", status=428, times=1)
    with pytest.raises(twh.PreconditionRequiredError) as required:
        c.update_item(item.id, etag="*", name="x")
    seen(required.value)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(twh.APIConnectionError) as conn:
        twh.Client(api_key=S.secret_key, base_url=f"http://127.0.0.1:{port}", max_retries=0).get_sandbox()
    seen(conn.value)
    expected = {
        twh.AuthenticationError, twh.NotFoundError, twh.ConflictError, twh.IdempotencyKeyReusedError,
        twh.ValidationError, twh.PreconditionFailedError, twh.PreconditionRequiredError,
        twh.QuotaExceededError, twh.APIConnectionError,
    }
    assert expected <= S.errors_seen, expected - S.errors_seen


def test_12_call_control() -> None:
    client, created = S.emu.create_sandbox_with_details()
    sandbox = created.id
    quick = client.with_options(timeout=0.3, max_retries=0)
    S.emu.inject_fault("delay", method="GET", path_prefix="/v1/sandbox", delay_ms=2000, times=1, sandbox=sandbox)
    started = time.monotonic()
    with pytest.raises(twh.APITimeoutError):
        quick.get_sandbox()
    assert time.monotonic() - started < 1.5
    time.sleep(2.1)  # the delayed request ends before the original client is checked
    assert client.get_sandbox().id == sandbox

    requests: List[twh.Attempt] = []
    responses: List[twh.Attempt] = []
    hooked = client.with_options(on_request=requests.append, on_response=responses.append)
    S.emu.inject_fault("error_before_commit", method="POST", path_prefix="/v1/items", status=503, times=2, sandbox=sandbox)
    item = hooked.create_item(sku="CALL-1", name="Called", low_stock_threshold=7)
    assert [a.attempt for a in requests] == [1, 2, 3]
    assert len({a.idempotency_key for a in requests}) == 1 and requests[0].idempotency_key
    assert [a.status for a in responses] == [503, 503, 201]

    S.emu.inject_fault("error_after_commit", method="PATCH", path_prefix="/v1/items/", status=500, times=1, sandbox=sandbox)
    renamed = client.update_item(item.id, name="Called again", etag=item.etag)
    assert renamed.version == item.version + 1 and renamed.low_stock_threshold == 7
    cleared = client.update_item(item.id, low_stock_threshold=None, etag=renamed.etag)
    assert cleared.low_stock_threshold is None
    kept = client.update_item(item.id, name="Kept", etag=cleared.etag)
    assert kept.low_stock_threshold is None and kept.name == "Kept"


def test_13_stop() -> None:
    url = S.emu.base_url
    S.emu.stop()
    assert not S.emu.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()
