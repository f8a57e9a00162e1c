"""Helpers of the tests: one scenario for both clients, and a small recording HTTP server."""

from __future__ import annotations

import http.server
import inspect
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import twh


async def a(value: Any) -> Any:
    """The value of a call of either client: awaited if it is an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


async def collect(iterator: Any) -> List[Any]:
    """Every result of an ``iter_*`` of either client."""
    if hasattr(iterator, "__aiter__"):
        return [x async for x in iterator]
    return list(iterator)


def client_of(emu: twh.Emulator, kind: str, **sandbox: Any) -> Any:
    """A ready client of ``kind`` ("sync" or "async") on a fresh sandbox."""
    return emu.create_sandbox(**sandbox) if kind == "sync" else emu.create_async_sandbox(**sandbox)


def make_client(kind: str, **config: Any) -> Any:
    return twh.Client(**config) if kind == "sync" else twh.AsyncClient(**config)


class Receiver:
    """A small HTTP server on 127.0.0.1 recording every request: ``(path, headers, body)``.
    ``status[path]`` (default 200) is what it answers on that path."""

    def __init__(self) -> None:
        self.requests: List[Tuple[str, Dict[str, str], bytes]] = []
        self.status: Dict[str, int] = {}
        self.answer: Dict[str, Tuple[int, Dict[str, str], bytes]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    canned = receiver.answer.get(self.path)
                    status = receiver.status.get(self.path, 200)
                if canned is not None:
                    status, headers, payload = canned
                else:
                    headers, payload = {"Content-Type": "text/plain"}, b"ok"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _handle
            do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def on(self, path: str) -> List[Tuple[Dict[str, str], bytes]]:
        with self._lock:
            return [(h, b) for p, h, b in self.requests if p == path]

    def wait_for(self, path: str, count: int, *, timeout_s: float = 10.0,
                 where: Optional[Callable[[Dict[str, str], bytes], bool]] = None) -> List[Tuple[Dict[str, str], bytes]]:
        """The requests on ``path`` (matching ``where``) once there are ``count``; bounded wait."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = [(h, b) for h, b in self.on(path) if where is None or where(h, b)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def event_type(body: bytes) -> str:
    return str(json.loads(body)["type"])
