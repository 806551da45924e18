"""One `sarlang-cli bench run|resume` out of process (QProcess), its JSON-lines progress as signals.

The run lives in its own process so a crash or an out-of-memory never takes the GUI down.
Stop sends SIGTERM (the CLI stops cleanly after the sample in flight: what is done stays and
`bench resume` continues it), then kills the process if it has not gone after a grace period.
"""

from __future__ import annotations

from collections import deque
from typing import List, Optional

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from sarlang_core.services import benchmarks

STOP_GRACE_MS = 15000
STDERR_LINES = 20


class BenchmarkProcess(QObject):
    """Signals: ``progress(dict)`` for each progress event, ``finished(kind, payload)`` once per run
    with kind "done" (payload: the done event), "cancelled", or "error" (payload: {"message"})."""

    started = Signal(str)               # run folder
    progress = Signal(dict)
    finished = Signal(str, dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.proc: Optional[QProcess] = None
        self.run_dir: Optional[str] = None
        self._stdout = b""
        self._stderr: deque = deque(maxlen=STDERR_LINES)
        self._last: Optional[dict] = None       # the last terminal event seen (done / error / cancelled)
        self._stopping = False
        self._kill_timer = QTimer(self, singleShot=True, interval=STOP_GRACE_MS)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self, program: str, args: List[str], run_dir: str, env: Optional[dict] = None) -> None:
        """Start the run process; ``env`` (e.g. the run's config with its credentials) is added
        to this process's environment for it alone."""
        if self.proc is not None:
            raise RuntimeError("a benchmark run is already going")
        self.run_dir = run_dir
        self._stdout, self._last, self._stopping = b"", None, False
        self._stderr.clear()
        proc = self.proc = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        environment.insert("PYTHONIOENCODING", "utf-8")
        for name, value in (env or {}).items():
            environment.insert(name, value)
        proc.setProcessEnvironment(environment)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        proc.start(program, args)
        self.started.emit(run_dir)

    def stop(self) -> None:
        """Ask the run to stop (SIGTERM: clean); kill it if it is still there after the grace period."""
        if self.proc is None or self._stopping:
            return
        self._stopping = True
        self.proc.terminate()
        self._kill_timer.start()

    def _kill(self) -> None:
        if self.proc is not None:
            self._stderr.append(f"the run did not stop within {STOP_GRACE_MS // 1000} s and was killed")
            self.proc.kill()

    # -- reading ----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self.proc is None:
            return
        self._stdout += bytes(self.proc.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            event = benchmarks.parse_event(line)
            if event is None:
                continue
            if event["event"] == "progress":
                self.progress.emit(event)
            else:
                self._last = event

    def _read_stderr(self) -> None:
        if self.proc is None:
            return
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line.rstrip())

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    # -- the end ----------------------------------------------------------------------------------
    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            program = self.proc.program()
            self._end("error", {"message": f"cannot start {program}: {self.proc.errorString()}. "
                                           "Is SARLANG Studio installed completely (sarlang-cli beside it)?"})

    def _finished(self, code: int, status) -> None:
        if self.proc is None:
            return
        self._read_stdout()
        self._read_stderr()
        last = self._last or {}
        kind = last.get("event")
        if kind == "done" and code == 0:
            self._end("done", last)
        elif kind == "cancelled" or (self._stopping and code in (130, 143, -15, 9, -9, 137)) or \
                (self._stopping and status == QProcess.ExitStatus.CrashExit):
            self._end("cancelled", {"message": last.get("message") or "stopped; Resume continues the run"})
        elif kind == "error":
            self._end("error", {"message": last.get("message", ""), "stderr": self.stderr_tail(), "code": code})
        else:
            how = "crashed" if status == QProcess.ExitStatus.CrashExit else f"exited with status {code}"
            tail = self.stderr_tail()
            self._end("error", {"message": f"sarlang-cli {how}" + (f":\n{tail}" if tail else " and said nothing"),
                                "stderr": tail, "code": code})

    def _end(self, kind: str, payload: dict) -> None:
        self._kill_timer.stop()
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.deleteLater()
        self.finished.emit(kind, dict(payload, run_dir=self.run_dir))
