"""The exception hierarchy of the SDK (docs/guide/errors.md).

Every error the SDK raises is a :class:`TWHError`. Errors that had an answer from the API are
:class:`APIStatusError` subclasses, one per kind, and carry ``status``, ``code``, ``message``,
``request_id``, ``errors`` (field problems), ``retry_after`` (seconds) and ``attempts``.
The native module describes an error as JSON (``twh::dispatch::error_details``) and
:func:`_from_details` makes the exception of its ``kind`` (the one table, ``_KINDS``, at the end).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Type, Union

from ._response import Response

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
    #: The answer's metadata (status, headers, request id, rate limit), if there was an answer.
    last_response: Optional[Response]

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
        last_response: Optional[Response] = None,
        display: Optional[str] = None,
    ) -> None:
        # str(error) is the full description (kind, status, code, request id, attempts);
        # `message` is the problem's `detail` alone, the same in every language.
        super().__init__(display or message)
        self.message = message
        self.last_response = last_response
        self.status = status
        self.code = code
        self.request_id = request_id
        self.errors = list(errors or [])
        self.retry_after = retry_after
        self.attempts = attempts
        self.current_etag = current_etag

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


#: The exception class of each kind of SDK error (``twh::ErrorKind::as_str``).
_KINDS: Dict[str, Type[TWHError]] = {
    "authentication": AuthenticationError,
    "permission": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "validation": ValidationError,
    "precondition_failed": PreconditionFailedError,
    "precondition_required": PreconditionRequiredError,
    "rate_limited": RateLimitedError,
    "quota_exceeded": QuotaExceededError,
    "server": ServerError,
    "api": APIStatusError,
    "connection": APIConnectionError,
    "timeout": APITimeoutError,
    "unexpected_response": UnexpectedResponseError,
    "invalid_request": InvalidRequestError,
    "configuration": ConfigurationError,
    "webhook_verification": WebhookVerificationError,
}


def _from_details(details: Union[str, bytes]) -> TWHError:
    """The exception an error description of the native module stands for (a kind this
    package does not know yet is a plain :class:`TWHError`)."""
    d: Dict[str, Any] = json.loads(details)
    cls = _KINDS.get(str(d.get("kind")), TWHError)
    return cls(
        d.get("message") or cls.__name__,
        status=d.get("status"),
        code=d.get("code"),
        request_id=d.get("request_id"),
        errors=d.get("errors"),
        retry_after=d.get("retry_after"),
        attempts=d.get("attempts") or 0,
        current_etag=d.get("current_etag"),
        last_response=Response(d["status"], d["headers"]) if d.get("headers") is not None else None,
        display=d.get("display"),
    )
