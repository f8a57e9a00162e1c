"""Sequential calls per second through ``twh.Client`` against ``httpx`` and ``requests`` doing the
same calls against the same emulator, in the same run (the machine is shared and noisy, so only
ratios measured side by side mean anything).

The calls, one at a time on one thread:

- ``get_item``: ``GET /v1/items/{id}``, answer parsed, ETag read;
- ``create_movement``: ``POST /v1/stock-movements`` (a receipt of 1) with a fresh
  ``Idempotency-Key``, answer parsed, ETag read.

Each raw client sends the headers the SDK sends (``Authorization``, ``User-Agent``, ``Accept``,
``api-version``, ``X-Request-Id``, ``Idempotency-Key`` on the POST), keeps its connection alive (``httpx.Client``,
``requests.Session``) and parses the JSON answer; the SDK also builds its typed result. The three
take turns round by round; each cell is the median of the rounds.

The emulator's request journal is off unless ``--journal``: all three pay for it alike, and its
work (and its churn through the caches) would move the ratios without saying anything about the
SDK. The table also gives µs per call; ``twh - httpx`` is what the SDK costs over httpx whatever
the emulator's own cost.

Run: ``python bench/python/bench.py [--calls N] [--rounds R] [--journal]`` with ``twh``, ``httpx`` and
``requests`` installed (``scripts/test-python`` installs them pinned into its venv).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

import httpx
import requests

import twh

Call = Callable[[], Any]


def headers(key: str) -> Dict[str, str]:
    """What the SDK sends on every request besides the per-call request id and key (its
    generated client adds ``api-version`` and ``Accept``), so all three make the same calls."""
    return {
        "Authorization": f"Bearer {key}",
        "User-Agent": f"twh-python/{twh.__version__}",
        "Accept": "application/json",
        "api-version": "1.0.0",
    }


def twh_calls(client: twh.Client, item_id: str, loc_id: str) -> Dict[str, Call]:
    def get() -> Any:
        item = client.get_item(item_id)
        assert item.etag
        return item

    def post() -> Any:
        moved = client.create_movement(type="receipt", item_id=item_id, location_id=loc_id, quantity=1)
        assert moved.etag
        return moved

    return {"get_item": get, "create_movement": post}


def httpx_calls(base_url: str, key: str, item_id: str, loc_id: str) -> Tuple[Dict[str, Call], Callable[[], None]]:
    http = httpx.Client(base_url=base_url, headers=headers(key), timeout=30.0)

    def get() -> Any:
        r = http.get(f"/v1/items/{item_id}", headers={"X-Request-Id": str(uuid.uuid4())})
        r.raise_for_status()
        assert r.headers["etag"]
        return r.json()

    def post() -> Any:
        r = http.post(
            "/v1/stock-movements",
            json={"type": "receipt", "item_id": item_id, "location_id": loc_id, "quantity": 1},
            headers={"X-Request-Id": str(uuid.uuid4()), "Idempotency-Key": str(uuid.uuid4())},
        )
        r.raise_for_status()
        assert r.headers["etag"]
        return r.json()

    return {"get_item": get, "create_movement": post}, http.close


def requests_calls(base_url: str, key: str, item_id: str, loc_id: str) -> Tuple[Dict[str, Call], Callable[[], None]]:
    session = requests.Session()
    session.headers.update(headers(key))

    def get() -> Any:
        r = session.get(f"{base_url}/v1/items/{item_id}", headers={"X-Request-Id": str(uuid.uuid4())}, timeout=30)
        r.raise_for_status()
        assert r.headers["etag"]
        return r.json()

    def post() -> Any:
        r = session.post(
            f"{base_url}/v1/stock-movements",
            json={"type": "receipt", "item_id": item_id, "location_id": loc_id, "quantity": 1},
            headers={"X-Request-Id": str(uuid.uuid4()), "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        r.raise_for_status()
        assert r.headers["etag"]
        return r.json()

    return {"get_item": get, "create_movement": post}, session.close


def rate(call: Call, n: int) -> float:
    """Calls per second of ``n`` sequential calls (after a short warm-up)."""
    for _ in range(min(20, n)):
        call()
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return n / (time.perf_counter() - t0)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per client, operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--journal", action="store_true", help="keep the emulator's request journal on")
    parser.add_argument("--min-ratio", type=float, default=0.0, help="exit 1 if twh/httpx is below this for any call")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")

    # No rate limit (the bench would measure it), and the pro plan (its quotas are not hard).
    with twh.Emulator(rate_limit_per_second=0, journal_size=None if args.journal else 0) as emu:
        client, created = emu.create_sandbox_with_details(name="bench", plan="pro")
        item = client.create_item(sku="BENCH-1", name="Bench")
        loc = client.create_location(code="BENCH-WH", name="Bench")
        hx, close_hx = httpx_calls(emu.base_url, created.secret_key, item.id, loc.id)
        rq, close_rq = requests_calls(emu.base_url, created.secret_key, item.id, loc.id)
        clients = {"twh.Client": twh_calls(client, item.id, loc.id), "httpx": hx, "requests": rq}
        results: Dict[Tuple[str, str], List[float]] = {}
        for _ in range(args.rounds):
            for op in ("get_item", "create_movement"):
                for name, calls in clients.items():
                    results.setdefault((name, op), []).append(rate(calls[op], args.calls))
        close_hx()
        close_rq()

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"Sequential calls per second, median of {args.rounds} rounds of {args.calls} calls (Python {sys.version.split()[0]},"
          f" twh {twh.__version__}, httpx {httpx.__version__}, requests {requests.__version__},"
          f" journal {'on' if args.journal else 'off'})")
    print()
    print(f"| {'call':<16} | {'twh.Client':>10} | {'httpx':>8} | {'requests':>8} | {'twh / httpx':>11} | {'twh / requests':>14} "
          f"| {'µs/call twh':>11} | {'httpx':>6} | {'twh - httpx':>11} |")
    print(f"|{'-' * 18}|{'-' * 11}:|{'-' * 9}:|{'-' * 9}:|{'-' * 12}:|{'-' * 15}:|{'-' * 12}:|{'-' * 7}:|{'-' * 12}:|")
    worst = float("inf")
    for op in ("get_item", "create_movement"):
        t, h, r = med[("twh.Client", op)], med[("httpx", op)], med[("requests", op)]
        worst = min(worst, t / h)
        print(f"| {op:<16} | {t:>10.0f} | {h:>8.0f} | {r:>8.0f} | {t / h:>10.2f}x | {t / r:>13.2f}x "
              f"| {1e6 / t:>11.1f} | {1e6 / h:>6.1f} | {1e6 / t - 1e6 / h:>11.1f} |")
    print()
    print("Every client talks HTTP/1.1 to the same in-process emulator over loopback; each call sends")
    print("a request id (and an idempotency key on the POST) and parses the JSON answer.")
    if worst < args.min_ratio:
        print(f"twh/httpx is {worst:.2f}x, below --min-ratio {args.min_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
