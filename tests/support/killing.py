"""Kill a child process with SIGKILL at the moment it signals it is inside the work under test
(it creates ``signal_file`` there), the way a crash or an OOM kill would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_when_inside(script: str, args, signal_file: Path, timeout: float = 30) -> int:
    """Run ``python -c script *args``; SIGKILL it once ``signal_file`` exists; its return code."""
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + timeout
        while not signal_file.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert signal_file.exists(), proc.communicate(timeout=10)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode
