"""The exception hierarchy of SDK.md "Errors".

Every error the SDK raises is a :class:`TWHError`. Errors that had an answer from the API are
:class:`APIStatusError` subclasses, one per kind, and carry ``status``, ``code``, ``message``,
``request_id``, ``errors`` (field problems), ``retry_after`` (seconds) and ``attempts``.
The native module builds them through :meth:`TWHError._from_native`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

__all__ = [
    "TWHError",
    "ConfigurationError",
    "InvalidRequestError",
    "APIConnectionError",
    "APITimeoutError",
    "UnexpectedResponseError",
    "APIStatusError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "IdempotencyKeyReusedError",
    "ValidationError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "RateLimitedError",
    "QuotaExceededError",
    "ServerError",
    "WebhookVerificationError",
]


class TWHError(Exception):
    """Base class of every error of the TWH SDK."""

    message: str
    status: Optional[int]
    code: Optional[str]
    request_id: Optional[str]
    errors: List[Dict[str, str]]
    retry_after: Optional[float]
    attempts: int
    current_etag: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        errors: Optional[List[Dict[str, str]]] = None,
        retry_after: Optional[float] = None,
        attempts: int = 0,
        current_etag: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.errors = list(errors or [])
        self.retry_after = retry_after
        self.attempts = attempts
        self.current_etag = current_etag

    @classmethod
    def _from_native(cls, details: str) -> "TWHError":
        d: Dict[str, Any] = json.loads(details)
        return cls(
            d.get("message") or cls.__name__,
            status=d.get("status"),
            code=d.get("code"),
            request_id=d.get("request_id"),
            errors=d.get("errors"),
            retry_after=d.get("retry_after"),
            attempts=d.get("attempts") or 0,
            current_etag=d.get("current_etag"),
        )

    @staticmethod
    def _from_details(details: str) -> "TWHError":
        """The exception of the class the native module named in ``details``."""
        d: Dict[str, Any] = json.loads(details)
        cls = globals().get(str(d.get("class")), TWHError)
        if not (isinstance(cls, type) and issubclass(cls, TWHError)):
            cls = TWHError
        return cls._from_native(details)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class ConfigurationError(TWHError):
    """The client could not be built (no API key, a malformed base URL, ...)."""


class InvalidRequestError(TWHError):
    """The request was refused before it was sent (a value the API does not accept)."""


class APIConnectionError(TWHError):
    """The request could not be sent or its answer not received."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class UnexpectedResponseError(TWHError):
    """The server's answer was not what the API describes."""


class APIStatusError(TWHError):
    """An answer with an error status."""


class AuthenticationError(APIStatusError):
    """401: missing, unknown or expired API key."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such resource in this sandbox."""


class ConflictError(APIStatusError):
    """409: conflicts with the current state (``insufficient_stock``, ``sku_taken``, ...)."""


class IdempotencyKeyReusedError(APIStatusError):
    """422 ``idempotency_key_reused``: this key was used for a different request."""


class ValidationError(APIStatusError):
    """400 or 422: the request is malformed or invalid; see ``errors``."""


class PreconditionFailedError(APIStatusError):
    """412: the ``If-Match`` ETag is stale (the current one is ``current_etag``)."""


class PreconditionRequiredError(APIStatusError):
    """428: the request needs ``If-Match``."""


class RateLimitedError(APIStatusError):
    """429 ``rate_limited``: too many requests; see ``retry_after``."""


class QuotaExceededError(RateLimitedError):
    """429 ``quota_exceeded``: a hard quota of the plan is used up."""


class ServerError(APIStatusError):
    """5xx: the server failed."""


class WebhookVerificationError(TWHError):
    """A webhook delivery failed verification."""
