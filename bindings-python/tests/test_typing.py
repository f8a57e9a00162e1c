"""The types are real: mypy --strict accepts the typed usage file and rejects misuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MISUSE = '''
import twh

def misuse(client: twh.Client) -> None:
    item = client.get_item("itm_1")
    a: int = item.sku
    b: str = client.get_stock_level(item_id="i", location_id="l").quantity
    item.name = "renamed"
    client.create_movement(type="gift", item_id="i", location_id="l", quantity=1)
    client.update_item("itm_1", name="no etag")
    c: str = client.create_movement_batch([])[0].lines[0].delta
    d = item.skuu
'''


def test_mypy_rejects_misuse(tmp_path: Path) -> None:
    source = tmp_path / "misuse.py"
    source.write_text(MISUSE)
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    lines = {int(line.split(":")[1]) for line in p.stdout.splitlines() if ": error:" in line}
    assert lines == {6, 7, 8, 9, 10, 11, 12}, p.stdout
    assert 'has no attribute "skuu"' in p.stdout, p.stdout
