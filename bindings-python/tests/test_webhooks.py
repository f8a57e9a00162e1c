"""twh.webhooks.verify against signatures computed with hmac directly (Standard Webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

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
