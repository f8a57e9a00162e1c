"""The ``twh-emulator`` command (the package's console script): the emulator's own command line,
the Rust binary's very function (``twh_emulator::cli::run``), so it takes exactly its flags.

``twh-emulator serve`` prints the base URL and a demo sandbox's secret key, then serves until
Ctrl-C or SIGTERM. The emulator handles those signals itself (tokio): SIGINT goes back to the
operating system's default first, because Python's handler would only note the signal, to raise
``KeyboardInterrupt`` once the command had ended.
"""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from . import _native

PROGRAM = "twh-emulator"


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command with ``argv`` (default: this process's arguments) and answers its exit
    status; as the console script, the process exits with it."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Anything Python buffered goes out before the emulator writes to the same descriptors.
    sys.stdout.flush()
    sys.stderr.flush()
    return _native.run_cli([PROGRAM, *args])


if __name__ == "__main__":
    sys.exit(main())
