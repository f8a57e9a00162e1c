"""The ``twh-emulator`` console script: the Rust binary's command line (``twh_emulator::cli::run``)
run by the package. It serves, prints its lines at once into a pipe, stops cleanly on Ctrl-C
(SIGINT reaches the emulator's handler, not Python's) and on SIGTERM, and passes exit statuses
through."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Dict, List, Tuple

import pytest

import twh

# The console script pip installed beside this interpreter.
SCRIPT = Path(sys.executable).parent / "twh-emulator"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def run(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.is_file(), f"no console script at {SCRIPT} (pip install the package)"


def test_help_and_version_exit_zero() -> None:
    top = run("--help")
    assert top.returncode == 0, top.stderr
    assert "Usage: twh-emulator" in top.stdout and "serve" in top.stdout
    serve = run("serve", "--help")
    assert serve.returncode == 0, serve.stderr
    for flag in ("--port", "--host", "--data-dir", "--admin-token", "--webhook-retry-schedule"):
        assert flag in serve.stdout
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"twh-emulator {twh.__version__}"


def test_bad_flags_exit_two_and_start_nothing() -> None:
    for args in (["serve", "--no-such-flag"], ["serve", "--port", "70000"], ["no-such-command"], []):
        p = run(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stdout == "", (args, p.stdout)
        assert "--help" in p.stderr, (args, p.stderr)


def test_a_busy_port_exits_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = run("serve", "--port", str(port))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr


def start(*args: str) -> Tuple["subprocess.Popen[str]", Dict[str, str], IO[str]]:
    """Starts ``twh-emulator serve --port 0`` with its stdout on a pipe and answers the process,
    the ``export`` lines it printed (read from the pipe while it runs) and its stderr file."""
    stderr = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert proc.stdout is not None
    lines: "queue.Queue[str]" = queue.Queue()
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    exports: Dict[str, str] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while "TWH_API_KEY" not in exports:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            stderr.seek(0)
            pytest.fail(f"no key printed in {START_TIMEOUT_S} s: {exports} {stderr.read()}")
        if line.startswith("export "):
            name, _, value = line[len("export ") :].strip().partition("=")
            exports[name] = value
    # The lines came through the pipe while the emulator runs: they were flushed, not buffered
    # until exit.
    assert proc.poll() is None
    return proc, exports, stderr


def get(url: str, key: str) -> Tuple[int, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def refused(base_url: str) -> bool:
    try:
        urllib.request.urlopen(base_url + "/v1/items", timeout=5)
    except urllib.error.URLError as e:
        return isinstance(e.reason, ConnectionRefusedError)
    return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_prints_its_url_and_key_serves_and_stops_cleanly(stop: signal.Signals) -> None:
    proc, exports, stderr = start()
    try:
        base = exports["TWH_BASE_URL"]
        assert base.startswith("http://127.0.0.1:")
        status, body = get(base + "/v1/items", exports["TWH_API_KEY"])
        assert status == 200, body
        assert isinstance(body, dict) and isinstance(body["data"], list) and body["data"], body  # demo seed
        status, problem = get(base + "/v1/items", "sk_test_wrong")
        assert status == 401, problem
        proc.send_signal(stop)
        assert proc.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr.seek(0)
    logs = stderr.read()
    assert "Traceback" not in logs and "KeyboardInterrupt" not in logs, logs
    assert "shutting down" in logs, logs
    assert refused(base)


def test_flags_reach_the_emulator() -> None:
    proc, exports, _ = start("--admin-token", "t0ken", "--log", "warn")
    try:
        clock = exports["TWH_BASE_URL"] + "/_emulator/clock"
        assert get(clock, "wrong")[0] == 401
        assert get(clock, "t0ken")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=STOP_TIMEOUT_S) == 0
