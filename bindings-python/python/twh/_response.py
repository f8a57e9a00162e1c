"""Response metadata and attempt events (per-call control).

Every result made from one answer (a resource, a page) and every error with an answer has
``last_response``: its ``status``, ``headers``, ``request_id``, ``idempotent_replayed`` and
``rate_limit``. The native call hands the headers over as one text (``name: value`` lines), split
here only when first asked for, so a caller that never looks pays one string per call.

:class:`Attempt` is what ``on_request`` / ``on_response`` hooks receive, once per attempt; the
``twh`` logger at DEBUG gets one line per attempt (method, path, status, attempt, elapsed time,
request id). Neither ever contains a header other than the request id and idempotency key, so
the API key (``Authorization``) is never shown.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, NamedTuple, Optional
from urllib.parse import urlsplit

__all__ = ["Attempt", "RateLimit", "Response"]

_log = logging.getLogger("twh")


class RateLimit(NamedTuple):
    """``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds)."""

    limit: int
    remaining: int
    reset: int


class Response:
    """One answer's metadata."""

    __slots__ = ("status", "_text", "_headers")

    def __init__(self, status: int, headers_text: str) -> None:
        self.status = status
        self._text = headers_text
        self._headers: Optional[Dict[str, str]] = None

    @property
    def headers(self) -> Dict[str, str]:
        """The response headers, names in lower case."""
        if self._headers is None:
            headers: Dict[str, str] = {}
            for line in self._text.splitlines():
                name, _, value = line.partition(": ")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    @property
    def request_id(self) -> Optional[str]:
        """The request id the server answered with (``X-Request-Id``)."""
        return self.headers.get("x-request-id")

    @property
    def idempotent_replayed(self) -> bool:
        """The answer replays an earlier one of the same idempotency key."""
        return self.headers.get("idempotent-replayed", "").lower() == "true"

    @property
    def rate_limit(self) -> Optional[RateLimit]:
        """The rate limit the answer reports, if it reports all three numbers."""
        h = self.headers
        try:
            return RateLimit(int(h["ratelimit-limit"]), int(h["ratelimit-remaining"]), int(h["ratelimit-reset"]))
        except (KeyError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"Response(status={self.status}, request_id={self.request_id!r})"


class Attempt:
    """One attempt of a call, as the hooks see it: before it (``status`` and ``elapsed`` are
    ``None``) and after it."""

    __slots__ = ("method", "url", "attempt", "request_id", "idempotency_key", "status", "elapsed")

    def __init__(
        self,
        method: str,
        url: str,
        attempt: int,
        request_id: Optional[str],
        idempotency_key: Optional[str],
        status: Optional[int],
        elapsed: Optional[float],
    ) -> None:
        self.method = method
        self.url = url
        self.attempt = attempt
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        self.status = status
        #: Seconds the attempt took.
        self.elapsed = elapsed

    def __repr__(self) -> str:
        return (
            f"Attempt(method={self.method!r}, url={self.url!r}, attempt={self.attempt}, "
            f"request_id={self.request_id!r}, status={self.status!r})"
        )


Hook = Callable[[Attempt], None]


def _observer(on_request: Optional[Hook], on_response: Optional[Hook]) -> Callable[..., None]:
    """The native observer: calls the hooks and logs each finished attempt at DEBUG."""

    def observe(
        event: str,
        method: str,
        url: str,
        attempt: int,
        request_id: Optional[str],
        idempotency_key: Optional[str],
        status: Optional[int],
        elapsed: Optional[float],
    ) -> None:
        a = Attempt(method, url, attempt, request_id, idempotency_key, status, elapsed)
        if event == "request":
            if on_request is not None:
                on_request(a)
            return
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "%s %s -> %s (attempt %d, %.1f ms, request %s)",
                method,
                urlsplit(url).path,
                status if status is not None else "no answer",
                attempt,
                (elapsed or 0.0) * 1000,
                request_id,
            )
        if on_response is not None:
            on_response(a)

    return observe
