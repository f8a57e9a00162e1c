#!/usr/bin/env python3
"""The request journal's cost per ledger write, in CPU instructions (valgrind's callgrind).

Wall-clock rates on a shared 2-core machine move by ±10% between runs; instruction counts
do not (the same binary and inputs give the same count whatever else the machine does). This
runs the emulator under callgrind four times: journal on (the default) and off
(`--journal-size 0`), each with N and 3N receipts over one keep-alive connection. The
difference between the two sizes is the cost of 2N writes, start-up and set-up excluded. N
defaults to the journal's default size (10,000 entries), so the smaller run fills the journal
and the 2N writes measured all go into a full one, each dropping the oldest entry: the steady
state of an emulator that has run for a while (a journal still filling costs a little more per
write, as its memory is fresh).

    python3 bench/journal/instructions.py [--writes N] [--emulator-bin PATH]

Needs valgrind (Debian: `apt-get install valgrind`). Builds the release emulator unless given one.
"""

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(binary: str, writes: int, journal_size: int, out: str) -> int:
    """Instructions of one emulator run that makes `writes` receipts."""
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "serve", "--port", "0",
        "--log", "warn", "--rate-limit-per-second", "0", "--demo-plan", "pro", "--journal-size", str(journal_size),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = key = None
    while url is None or key is None:
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"the emulator ended before printing its address: {proc.stderr.read()[-2000:]}")
        if line.startswith("export TWH_BASE_URL=http://"):
            url = line.split("//", 1)[1].strip()
        elif line.startswith("export TWH_API_KEY="):
            key = line.split("=", 1)[1].strip()
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def post(path: str, body: dict) -> dict:
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        conn.request("POST", path, json.dumps(body), headers)
        answer = conn.getresponse()
        data = answer.read()
        if answer.status >= 300:
            sys.exit(f"POST {path}: {answer.status} {data[:300]!r}")
        return json.loads(data)

    item = post("/v1/items", {"sku": "BENCH-1", "name": "Bench item"})["id"]
    location = post("/v1/locations", {"code": "BENCH-L1", "name": "Bench location"})["id"]
    for _ in range(writes):
        post("/v1/stock-movements", {"type": "receipt", "item_id": item, "location_id": location, "quantity": 1})
    conn.close()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    found = re.search(r"Collected : (\d+)", err)
    if not found:
        sys.exit(f"no instruction count from callgrind: {err[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=10_000, help="N (the runs make N and 3N writes)")
    parser.add_argument("--emulator-bin", help="a release twh-emulator (default: cargo build --release)")
    args = parser.parse_args()
    binary = args.emulator_bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "twh-emulator"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "twh-emulator")
    n = args.writes
    per_write = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in (("on", 10_000), ("off", 0)):
            small = run(binary, n, size, os.path.join(tmp, f"{name}-small.out"))
            large = run(binary, 3 * n, size, os.path.join(tmp, f"{name}-large.out"))
            per_write[name] = (large - small) / (2 * n)
    on, off = per_write["on"], per_write["off"]
    print("| journal | instructions per write | ratio to off |")
    print("|---|---:|---:|")
    print(f"| off (`--journal-size 0`) | {off:,.0f} | 1.00× |")
    print(f"| on (default) | {on:,.0f} | {on / off:.3f}× |")
    print(f"\nThe journal costs {on - off:,.0f} instructions a write ({(on / off - 1) * 100:.1f}%), over {2 * n} writes.")


if __name__ == "__main__":
    main()
