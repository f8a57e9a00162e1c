"""Webhook verification (Standard Webhooks), done by the Rust SDK in constant time."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Mapping, Optional, Union

from . import _native
from ._models import Model

__all__ = ["verify", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = _dt.timedelta(minutes=5)


def verify(
    payload: Union[bytes, str],
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: Union[float, _dt.timedelta, None] = None,
) -> Model:
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
    event = _native.verify_webhook(body, {str(k): str(v) for k, v in headers.items()}, secret, seconds)
    return Model(json.loads(event))
