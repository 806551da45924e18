"""One long `sarlang-cli ... --progress-jsonl` job out of process (QProcess), its JSON lines as signals.

The job lives in its own process so a crash or an out-of-memory never takes the GUI down. A
subclass says how to read a line (``parse_line``), which event names end a run, and how a stop
escalates: each rung of ``stop_ladder`` is an action and how long to wait for the process to go
before the next one (benchmarks: SIGTERM, then kill; training: a stop request file, SIGTERM, kill).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, List, Optional, Tuple

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

STDERR_LINES = 20
STOP_EXIT_CODES = (130, 143, -15, 9, -9, 137)


class CliRunProcess(QObject):
    """Signals: ``progress(dict)`` for each event that does not end the run, ``finished(kind,
    payload)`` once per run with kind "done" (payload: the done event), ``stopped_event`` (stopped
    on request; Resume continues) or "error" (payload: {"message", "stderr", "code"})."""

    started = Signal(str)               # run folder
    progress = Signal(dict)
    finished = Signal(str, dict)

    stopped_event = "cancelled"         # the event name the CLI prints when it stopped on request
    what = "run"                        # for messages: "the run did not stop..."

    def __init__(self, parent=None):
        super().__init__(parent)
        self.proc: Optional[QProcess] = None
        self.run_dir: Optional[str] = None
        self._stdout = b""
        self._stderr: deque = deque(maxlen=STDERR_LINES)
        self._last: Optional[dict] = None       # the last terminal event seen
        self._stopping = False
        self._rung = 0
        self._ladder: List[Tuple[Callable[[], None], int]] = []
        self._stop_timer = QTimer(self, singleShot=True)
        self._stop_timer.timeout.connect(self._next_rung)

    # -- what a subclass says (BenchmarkProcess, TrainingProcess) --------------------------------------
    def parse_line(self, line: bytes) -> Optional[dict]:
        """One stdout line as an event dict, or None for anything else. Abstract."""
        raise NotImplementedError(f"{type(self).__name__} must say how to read its process's lines")

    def stop_ladder(self) -> List[Tuple[Callable[[], None], int]]:
        """(action, ms to wait for the process to end before the next rung); the last rung kills. Abstract."""
        raise NotImplementedError(f"{type(self).__name__} must say how to stop its process")

    @property
    def running(self) -> bool:
        return self.proc is not None

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self, program: str, args: List[str], run_dir: str, env: Optional[dict] = None) -> None:
        """Start the process; ``env`` (e.g. the run's config with its credentials) is added to this
        process's environment for it alone."""
        if self.proc is not None:
            raise RuntimeError(f"a {self.what} is already going")
        self.run_dir = run_dir
        self._stdout, self._last, self._stopping, self._rung = b"", None, False, 0
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
        """Ask the process to stop cleanly; escalate along ``stop_ladder`` while it is still there."""
        if self.proc is None or self._stopping:
            return
        self._stopping = True
        self._rung = 0
        self._ladder = self.stop_ladder()
        self._next_rung()

    def _next_rung(self) -> None:
        ladder = self._ladder
        if self.proc is None or self._rung >= len(ladder):
            return
        action, wait_ms = ladder[self._rung]
        self._rung += 1
        action()
        if self._rung < len(ladder):
            self._stop_timer.start(wait_ms)

    def terminate(self) -> None:
        if self.proc is not None:
            self.proc.terminate()

    def kill(self) -> None:
        if self.proc is not None:
            waited = sum(ms for _a, ms in self._ladder[:-1]) // 1000
            self._stderr.append(f"the {self.what} did not stop within {waited} s and was killed")
            self.proc.kill()

    # -- reading ----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self.proc is None:
            return
        self._stdout += bytes(self.proc.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            event = self.parse_line(line)
            if event is None:
                continue
            if event["event"] in ("done", "error", self.stopped_event):
                self._last = event
            else:
                self.progress.emit(event)

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
        crashed = status == QProcess.ExitStatus.CrashExit
        if kind == "done" and code == 0:
            self._end("done", last)
        elif kind == self.stopped_event or (self._stopping and (code in STOP_EXIT_CODES or crashed)):
            self._end(self.stopped_event, {**last, "message": last.get("message") or
                                           f"stopped; Resume continues the {self.what}"})
        elif kind == "error":
            self._end("error", {"message": last.get("message", ""), "stderr": self.stderr_tail(), "code": code})
        else:
            how = "crashed" if crashed else f"exited with status {code}"
            tail = self.stderr_tail()
            self._end("error", {"message": f"sarlang-cli {how}" + (f":\n{tail}" if tail else " and said nothing"),
                                "stderr": tail, "code": code})

    def _end(self, kind: str, payload: dict) -> None:
        self._stop_timer.stop()
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.deleteLater()
        self.finished.emit(kind, dict(payload, run_dir=self.run_dir))


class StopBeforeClose:
    """For a window that drives a run process (``self.process``, ``self.stop()``): closing it while a
    run goes asks first (``confirm_stop``, replaceable in tests), stops the run, and closes once the
    run has ended (the window calls ``close_if_asked()`` when its run finishes)."""

    stop_title = "A run is going"
    stop_question = "Stop the run and close?"

    def init_stop_before_close(self) -> None:
        self.confirm_stop: Callable[[], bool] = self._ask_stop
        self.close_when_stopped = False

    def _ask_stop(self) -> bool:
        from PySide6.QtWidgets import QMessageBox

        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self, self.stop_title, self.stop_question + self.close_note(),
                                      buttons.Yes | buttons.No, buttons.No)
        return answer == buttons.Yes

    def close_note(self) -> str:
        return ""

    def close_if_asked(self) -> None:
        if self.close_when_stopped:
            self.close()

    def closeEvent(self, event) -> None:
        if self.process.running:
            if self.close_when_stopped or self.confirm_stop():
                self.close_when_stopped = True
                self.stop()
            event.ignore()
            return
        self.close_when_stopped = False
        self.closing()
        super().closeEvent(event)

    def closing(self) -> None:
        """Called once the window really closes."""
