"""TWH quickstart: an item, a location, a receipt, a conditional sale, the stock level with its
ETag, and a verified webhook delivered to a small HTTP server of our own.

Runs against the emulator in-process, or against a running `twh-emulator serve` when
TWH_BASE_URL and TWH_API_KEY are set.
"""

from __future__ import annotations

import http.server
import os
import queue
import threading
import time
from typing import Any, Dict, Optional, Tuple

import twh

WEBHOOK_WAIT_SECONDS = 15.0


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that queues each delivery (headers, raw body)."""

    def __init__(self) -> None:
        self.deliveries: "queue.Queue[Tuple[Dict[str, str], bytes]]" = queue.Queue(maxsize=1000)
        deliveries = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                deliveries.put_nowait(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the output to the steps

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def step(n: int, text: str) -> None:
    print(f"{n}. {text}", flush=True)


def main() -> None:
    emulator: Optional[twh.Emulator] = None
    if os.environ.get("TWH_BASE_URL") and os.environ.get("TWH_API_KEY"):
        client = twh.Client()  # configured from TWH_BASE_URL and TWH_API_KEY
        step(1, f"Using the TWH server at {client.base_url} (TWH_BASE_URL)")
    else:
        emulator = twh.Emulator()
        client = emulator.create_sandbox(name="quickstart")
        step(1, f"Started the emulator in-process at {emulator.base_url}; sandbox {client.get_sandbox().id}")
    receiver = WebhookReceiver()
    try:
        run(client, receiver)
    finally:
        receiver.close()
        if emulator is not None:
            emulator.stop()


def run(client: twh.Client, receiver: WebhookReceiver) -> None:
    suffix = time.strftime("%H%M%S")  # SKUs and codes are unique per sandbox: rerunnable
    item = client.create_item(sku=f"MUG-BLU-{suffix}", name="Mug, blue", low_stock_threshold=5)
    step(2, f"Created item {item.id} (sku {item.sku})")
    location = client.create_location(code=f"WH-{suffix}", name="Main warehouse", kind="warehouse")
    step(3, f"Created location {location.id} (code {location.code})")

    endpoint = client.create_webhook_endpoint(url=receiver.url, event_types=["stock_movement.created"])
    step(4, f"Registered webhook endpoint {endpoint.id} -> {receiver.url}")

    receipt = client.create_movement(type="receipt", item_id=item.id, location_id=location.id, quantity=10)
    step(5, f"Receipt of 10: movement {receipt.id}, quantity now {receipt.lines[0].quantity_after}")

    level = client.get_stock_level(item_id=item.id, location_id=location.id)
    step(6, f"Stock level: quantity {level.quantity}, ETag {level.etag}")

    sale = client.create_movement(
        type="shipment", item_id=item.id, location_id=location.id, quantity=3, if_match=level.etag
    )
    step(7, f"Shipment of 3 if the level is still {level.etag}: movement {sale.id}, ETag now {sale.etag}")
    try:
        client.create_movement(
            type="shipment", item_id=item.id, location_id=location.id, quantity=3, if_match=level.etag
        )
    except twh.PreconditionFailedError as e:
        step(8, f"The same shipment with the old ETag is refused: {e.status} {e.code} (current {e.current_etag})")
    else:
        raise SystemExit("expected the stale ETag to be refused")

    level = client.get_stock_level(item_id=item.id, location_id=location.id)
    step(9, f"Stock level: quantity {level.quantity}, ETag {level.etag}")

    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SystemExit(f"no stock_movement.created delivery for {receipt.id} within {WEBHOOK_WAIT_SECONDS} s")
        try:
            headers, body = receiver.deliveries.get(timeout=remaining)
        except queue.Empty:
            continue
        event = twh.webhooks.verify(body, headers, endpoint.secret)  # raises if not signed by TWH
        if event.type == "stock_movement.created" and event.data["id"] == receipt.id:
            break
    step(10, f"Received and verified webhook {headers['webhook-id']}: {event.type} for movement {receipt.id}")

    client.delete_webhook_endpoint(endpoint.id, etag=client.get_webhook_endpoint(endpoint.id).etag)
    step(11, "Done: deleted the webhook endpoint")


if __name__ == "__main__":
    main()
