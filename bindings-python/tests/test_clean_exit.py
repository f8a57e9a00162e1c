"""The process exits cleanly every time, even with work in flight at exit
(PyO3/pyo3-async-runtimes#40: runtime threads touching Python during finalisation)."""

from __future__ import annotations

import subprocess
import sys

RUNS = 50

SCRIPT = r"""
import asyncio, threading, twh
emu = twh.Emulator()
client = emu.create_sandbox()
item = client.create_item(sku="X", name="X")
loc = client.create_location(code="L", name="L")
client.create_movement(type="receipt", item_id=item.id, location_id=loc.id, quantity=1)

async def busy():
    ac = emu.create_async_sandbox()
    await asyncio.gather(*(ac.list_items() for _ in range(4)))
asyncio.run(busy())

# Leave calls in flight on daemon threads and the emulator running at exit.
emu.inject_fault("delay", delay_ms=2000, times=100)
for _ in range(3):
    threading.Thread(target=lambda: client.list_items(), daemon=True).start()
# And awaitables in flight on an event loop of a daemon thread.
async def waiting():
    ac = emu.create_async_sandbox()
    await asyncio.gather(*(ac.list_items() for _ in range(3)))
threading.Thread(target=lambda: asyncio.run(waiting()), daemon=True).start()
print("ok")
"""


def test_fifty_runs_exit_cleanly() -> None:
    for i in range(RUNS):
        p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"run {i}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
        assert p.stdout.strip() == "ok", f"run {i}: {p.stdout!r} {p.stderr!r}"
        assert "panicked" not in p.stderr and "Fatal Python error" not in p.stderr, f"run {i}: {p.stderr}"
