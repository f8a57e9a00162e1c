"""Webhook verification (Standard Webhooks), done by the Rust SDK in constant time."""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Dict, Mapping, Optional, Sequence, Union

from . import _native
from .types import Event

__all__ = ["verify", "sign", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = _dt.timedelta(minutes=5)


def verify(
    payload: Union[bytes, str],
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: Union[float, _dt.timedelta, None] = None,
) -> Event:
    """Checks a delivery's ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
    headers against ``secret`` (``whsec_...``) and answers its event. Raises
    :class:`twh.WebhookVerificationError` otherwise. Pass the raw body, before parsing it."""
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    seconds: Optional[float]
    if tolerance is None:
        seconds = None
    elif isinstance(tolerance, _dt.timedelta):
        seconds = tolerance.total_seconds()
    else:
        seconds = float(tolerance)
    _native.verify_webhook(body, {str(k): str(v) for k, v in headers.items()}, secret, seconds)
    # Verified: the event as it was sent (fields newer than this package kept).
    return Event(json.loads(body))


def sign(
    payload: Union[bytes, str],
    secret: Union[str, Sequence[str]],
    *,
    msg_id: str,
    timestamp: Optional[int] = None,
) -> Dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers of a
    delivery of ``payload`` signed as the emulator signs (one ``v1,`` signature per secret, as
    during a rotation), for testing your receiver. ``timestamp`` defaults to now (unix seconds)."""
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return dict(_native.sign_webhook(secrets, msg_id, ts, body))
