"""twh.webhooks.verify against signatures computed with hmac directly (Standard Webhooks)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from _support import Receiver, event_type

import twh

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _sign(msg_id: str, ts: int, body: bytes) -> str:
    key = base64.b64decode(SECRET[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _event() -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "item.created",
            "created_at": "2026-01-01T00:00:00Z",
            "sandbox_id": "sbx_1",
            "data": {},
        }
    ).encode()


def test_verify_accepts_a_good_signature() -> None:
    body, ts = _event(), int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": "v1,bogus " + _sign("msg_1", ts, body)}
    event = twh.webhooks.verify(body, headers, SECRET)
    assert event.id == "evt_1"


def test_verify_rejects_tampering_and_old_timestamps() -> None:
    body, ts = _event(), int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": _sign("msg_1", ts, body)}
    with pytest.raises(twh.WebhookVerificationError):
        twh.webhooks.verify(body + b" ", headers, SECRET)
    old = ts - 3600
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(old), "webhook-signature": _sign("msg_1", old, body)}
    with pytest.raises(twh.WebhookVerificationError):
        twh.webhooks.verify(body, headers, SECRET)
    with pytest.raises(twh.WebhookVerificationError):
        twh.webhooks.verify(body, {}, SECRET)


# --- Interoperation with the standardwebhooks reference library, both ways -----------------

def test_what_standardwebhooks_signs_verifies_here() -> None:
    from standardwebhooks.webhooks import Webhook

    body = _event()
    now = dt.datetime.now(tz=dt.timezone.utc)
    signature = Webhook(SECRET).sign("msg_sw", now, body.decode())
    headers = {"webhook-id": "msg_sw", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    assert twh.webhooks.verify(body, headers, SECRET).id == "evt_1"
    with pytest.raises(twh.WebhookVerificationError):
        twh.webhooks.verify(body.replace(b"evt_1", b"evt_2"), headers, SECRET)


def test_what_this_signs_verifies_with_standardwebhooks() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    body = _event()
    headers = twh.webhooks.sign(body, SECRET, msg_id="msg_twh")
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(SECRET).verify(body, headers)["id"] == "evt_1"
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes!!!!!!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    # Two secrets (a rotation): each verifier accepts with either.
    both = twh.webhooks.sign(body, [SECRET, other], msg_id="msg_two")
    assert len(both["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, other):
        assert Webhook(secret).verify(body, both)["id"] == "evt_1"
        assert twh.webhooks.verify(body, both, secret).id == "evt_1"


def test_emulator_deliveries_verify_with_both_libraries_also_during_a_rotation(twh_emulator: twh.Emulator) -> None:
    from standardwebhooks.webhooks import Webhook

    receiver = Receiver()
    try:
        client = twh_emulator.create_sandbox()
        endpoint = client.create_webhook_endpoint(url=receiver.url + "/hooks", event_types=["item.created"])
        assert endpoint.secret.startswith("whsec_") and endpoint.etag == '"1"'
        client.create_item(sku="W-1", name="W")
        [(headers, body)] = receiver.wait_for("/hooks", 1)
        event = twh.webhooks.verify(body, headers, endpoint.secret)
        assert event.type == "item.created" and event.id == headers["webhook-id"]
        assert Webhook(endpoint.secret).verify(body, headers)["id"] == event.id

        rotated = client.rotate_webhook_secret(endpoint.id)
        assert rotated.secret != endpoint.secret
        client.create_item(sku="W-2", name="W")
        [_, (headers2, body2)] = receiver.wait_for("/hooks", 2)
        assert len(headers2["webhook-signature"].split(" ")) == 2, "old and new secret both sign"
        for secret in (endpoint.secret, rotated.secret):
            assert twh.webhooks.verify(body2, headers2, secret).type == "item.created"
            assert Webhook(secret).verify(body2, headers2)["type"] == "item.created"
    finally:
        receiver.close()


def test_endpoints_and_deliveries_through_the_sdk(twh_emulator: twh.Emulator) -> None:
    receiver = Receiver()
    receiver.status["/down"] = 500
    try:
        client = twh_emulator.create_sandbox()
        down = client.create_webhook_endpoint(
            url=receiver.url + "/down", event_types=["*"], description="flaky", retry_schedule_seconds=[1] * 7
        )
        up = client.create_webhook_endpoint(url=receiver.url + "/up", event_types=["item.created"])
        assert [e.id for e in client.iter_webhook_endpoints(limit=1)] == [down.id, up.id]
        got = client.get_webhook_endpoint(down.id)
        assert (got.description, got.retry_schedule_seconds, got.enabled) == ("flaky", [1] * 7, True)

        with pytest.raises(twh.PreconditionFailedError):
            client.update_webhook_endpoint(up.id, etag='"9"', description="stale")
        up2 = client.update_webhook_endpoint(up.id, etag=up.etag, description="now described")
        assert up2.description == "now described" and up2.etag == '"2"'

        ping = client.test_webhook_endpoint(up.id)
        assert ping.event_type == "ping" and ping.endpoint_id == up.id
        receiver.wait_for("/up", 1, where=lambda h, b: event_type(b) == "ping")

        item = client.create_item(sku="D-1", name="D")
        receiver.wait_for("/down", 1)
        # Walk the failing delivery through its schedule (1 s apart) to dead.
        for _ in range(10):
            twh_emulator.advance_clock(2)
            dead = client.list_webhook_deliveries(endpoint_id=down.id, status="dead").data
            if dead:
                break
        assert dead, "the delivery to the failing endpoint ends dead"
        delivery = client.get_webhook_delivery(dead[0].id)
        assert len(delivery.attempts) == 8 and all(at.status_code == 500 for at in delivery.attempts)
        assert isinstance(delivery.attempts[0].at, dt.datetime)
        assert [d.id for d in client.iter_webhook_deliveries(endpoint_id=down.id, status="dead")] == [delivery.id]
        assert any(e.type == "webhook_delivery.exhausted" for e in client.iter_events(type="webhook_delivery.exhausted"))

        receiver.status["/down"] = 200
        assert client.replay_webhook_endpoint(down.id, status="dead").count == 1
        for _ in range(100):
            if client.get_webhook_delivery(delivery.id).status == "succeeded":
                break
            time.sleep(0.05)
        assert client.get_webhook_delivery(delivery.id).status == "succeeded"
        ids = {h["webhook-id"] for h, _ in receiver.on("/down") if event_type(_) == "item.created"}
        assert ids == {delivery.event_id}, "every attempt carries the same webhook-id"
        assert client.get_event(delivery.event_id).data["id"] == item.id

        again = client.replay_webhook_delivery(delivery.id)
        assert again.id == delivery.id

        client.delete_webhook_endpoint(up.id, etag=up2.etag)
        with pytest.raises(twh.NotFoundError):
            client.get_webhook_endpoint(up.id)
    finally:
        receiver.close()
