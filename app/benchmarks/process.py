"""One `sarlang-cli bench run|resume` out of process (QProcess), its JSON-lines progress as signals.

Stop sends SIGTERM (the CLI stops cleanly after the sample in flight: what is done stays and
`bench resume` continues it), then kills the process if it has not gone after a grace period.
"""

from __future__ import annotations

from typing import Optional

from app.run_process import CliRunProcess
from sarlang_core.services import benchmarks

STOP_GRACE_MS = 15000


class BenchmarkProcess(CliRunProcess):
    """``finished`` kinds: "done", "cancelled" or "error" (see ``CliRunProcess``)."""

    stopped_event = "cancelled"
    what = "run"

    def parse_line(self, line: bytes) -> Optional[dict]:
        return benchmarks.parse_event(line)

    def stop_ladder(self):
        return [(self.terminate, STOP_GRACE_MS), (self.kill, 0)]
