"""One `sarlang-cli train run|resume` out of process (QProcess), its JSON-lines events as signals.

Stop writes the run's stop request (RUN/STOP): the process finishes the optimizer step in
flight, saves a checkpoint and exits, and Resume continues from there. A process still there
after the grace period (a step that hangs, a loading model that never reaches a step) gets
SIGTERM (the same clean stop where the trainer listens), then is killed. Before the trainer has
started (data and model still loading) there is nothing to save: SIGTERM at once.
"""

from __future__ import annotations

from typing import Optional

from app import workers
from app.run_process import CliRunProcess
from sarlang_core.services import training

STOP_GRACE_MS = 120_000        # one optimizer step of a big model plus its checkpoint
TERMINATE_GRACE_MS = 15_000


class TrainingProcess(CliRunProcess):
    """``progress`` carries every event but the last one (progress, start, step, eval, checkpoint);
    ``finished`` kinds: "done" (payload: step, adapter), "stopped" (step) or "error"."""

    stopped_event = "stopped"
    what = "training run"

    def __init__(self, parent=None, stop_grace_ms: int = STOP_GRACE_MS):
        super().__init__(parent)
        self.stop_grace_ms = stop_grace_ms
        self.trainer_started = False
        self.progress.connect(self._seen)

    def start(self, program, args, run_dir, env=None) -> None:
        self.trainer_started = False
        super().start(program, args, run_dir, env)

    def _seen(self, event: dict) -> None:
        if event.get("event") in ("start", "step"):
            self.trainer_started = True

    def parse_line(self, line: bytes) -> Optional[dict]:
        return training.parse_event(line)

    def request_stop(self) -> None:
        """The stop request file (written on the io lane: the UI thread writes no file)."""
        if self.run_dir:
            workers.submit("io", "train-stop", training.request_stop, self.run_dir,
                           on_error=lambda _r, _exc: self.terminate())

    def stop_ladder(self):
        if not self.trainer_started:
            return [(self.terminate, TERMINATE_GRACE_MS), (self.kill, 0)]
        return [(self.request_stop, self.stop_grace_ms), (self.terminate, TERMINATE_GRACE_MS), (self.kill, 0)]
