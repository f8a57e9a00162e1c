"""TWH for Python: a typed, retrying, idempotent client for the TWH ledger-first inventory API,
and the TWH emulator in-process. The work is done by the Rust SDK (``twh._native``)."""

from __future__ import annotations

import atexit as _atexit

from . import _native, params, types, webhooks
from ._async_client import AsyncClient
from ._emulator import Emulator
from ._sync_client import Client
from ._response import Attempt, RateLimit, Response
from ._transport import NOT_GIVEN, READ_MODIFY_WRITE_ATTEMPTS_MAX, NotGiven, Page
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TWHError,
    UnexpectedResponseError,
    ValidationError,
    WebhookVerificationError,
)
from ._models import Model

__version__: str = _native.__version__

__all__ = [
    "NOT_GIVEN",
    "NotGiven",
    "Client",
    "AsyncClient",
    "Emulator",
    "Model",
    "Page",
    "Response",
    "RateLimit",
    "Attempt",
    "READ_MODIFY_WRITE_ATTEMPTS_MAX",
    "params",
    "types",
    "webhooks",
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
    "__version__",
]

# Stop the Rust runtime and drain in-flight work before the interpreter finalises, so no tokio
# thread is running while Python tears down (PyO3/pyo3-async-runtimes#40).
_atexit.register(_native.shutdown)
