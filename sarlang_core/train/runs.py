"""A training run's folder: what is in it, who holds it, how far it got.

    RUN/config.json        the TrainConfig            RUN/pipeline.json   the Pipeline (null: as stored)
    RUN/data.json          samples, skipped, token-length statistics
    RUN/events.jsonl       one JSON object per optimizer step / evaluation (loss, lr, grad norm, speed)
    RUN/state.json         status (running, stopped, finished, failed), step, message
    RUN/checkpoints/checkpoint-N/   Trainer checkpoints (adapter, optimizer, scheduler, RNG, trainer_state.json)
    RUN/adapter/           the final LoRA adapter in PEFT's format (+ sarlang_train.json: its provenance)
    RUN/run.lock           held by the process training in it;  RUN/STOP   asks it to stop

A checkpoint counts only once its trainer_state.json (written last) parses: a checkpoint cut short by
a kill or a full disk is never resumed from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..atomic import write_text_atomic
from ..errors import TrainError

PathLike = Union[str, os.PathLike]
CONFIG, PIPELINE, DATA, EVENTS, STATE = "config.json", "pipeline.json", "data.json", "events.jsonl", "state.json"
CHECKPOINTS, ADAPTER, LOCK, STOP = "checkpoints", "adapter", "run.lock", "STOP"
STATUSES = ("created", "running", "stopped", "finished", "failed")
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(run_dir: PathLike) -> List[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = _CKPT.match(d.name)
            if m and d.is_dir() and _complete(d):
                found.append((int(m.group(1)), d))
    return [d for _, d in sorted(found)]


def _complete(ckpt: Path) -> bool:
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def checkpoint_step(ckpt: Path) -> int:
    m = _CKPT.match(ckpt.name)
    return int(m.group(1)) if m else 0


def remove_incomplete_checkpoints(run_dir: PathLike) -> List[str]:
    """Delete checkpoint folders a kill or a failed save left half-written; return their names."""
    root = Path(run_dir) / CHECKPOINTS
    gone = []
    if root.is_dir():
        for d in root.iterdir():
            if _CKPT.match(d.name) and d.is_dir() and not _complete(d):
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d.name)
    return gone


# ------------------------------------------------------------------ state and events
def write_state(run_dir: PathLike, status: str, **fields: Any) -> None:
    assert status in STATUSES
    state = {"status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), **fields}
    write_text_atomic(Path(run_dir) / STATE, json.dumps(state, indent=2))


def read_state(run_dir: PathLike) -> Dict[str, Any]:
    """The run's state; a run whose process died without saying so reads as "stopped" (killed)."""
    path = Path(run_dir) / STATE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "created" if (Path(run_dir) / CONFIG).is_file() else "missing"}
    if state.get("status") == "running" and not RunLock.held(run_dir):
        state = {**state, "status": "stopped", "message": "the training process ended without saying why "
                 "(killed?); resume continues from the last checkpoint"}
    return state


def read_events(run_dir: PathLike) -> List[dict]:
    """Events in the order written; a torn last line (a kill mid-write) is skipped."""
    out = []
    try:
        with open(Path(run_dir) / EVENTS, encoding="utf-8") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
    except OSError:
        pass
    return out


def trim_events(run_dir: PathLike, step: int) -> None:
    """Drop events after optimizer step ``step`` (a resumed run writes those steps again)."""
    kept = [e for e in read_events(run_dir) if int(e.get("step", 0)) <= step]
    write_text_atomic(Path(run_dir) / EVENTS, "".join(json.dumps(e) + "\n" for e in kept))


class EventLog:
    """Appends one JSON object per line, flushed each time (a reader sees whole lines)."""

    def __init__(self, run_dir: PathLike) -> None:
        self.path = Path(run_dir) / EVENTS
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, event: dict) -> None:
        self._f.write(json.dumps(event) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


# ------------------------------------------------------------------ the lock
class RunLock:
    """An OS lock on RUN/run.lock held while a process trains there: a second run in the same
    folder is refused, and the lock goes with the process however it ends (kill included)."""

    def __init__(self, run_dir: PathLike) -> None:
        self.path = Path(run_dir) / LOCK
        self._f: Any = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        if not _try_lock(f):
            f.close()
            raise TrainError(f"{self.path.parent}: another training process is writing this run folder "
                             f"(pid {_holder(self.path)}); wait for it, stop it, or choose another folder")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._f = f
        return self

    def release(self) -> None:
        if self._f is not None:
            _unlock(self._f)
            self._f.close()
            self._f = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @staticmethod
    def held(run_dir: PathLike) -> bool:
        path = Path(run_dir) / LOCK
        if not path.is_file():
            return False
        with open(path, "a+") as f:
            if _try_lock(f):
                _unlock(f)
                return False
        return True


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _try_lock(f: Any) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(f: Any) -> None:
    if os.name == "nt":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------ stop requests
def request_stop(run_dir: PathLike) -> None:
    """Ask the run's process to save a checkpoint and stop after its current optimizer step."""
    write_text_atomic(Path(run_dir) / STOP, time.strftime("%Y-%m-%dT%H:%M:%S"))


def stop_requested(run_dir: PathLike) -> bool:
    return (Path(run_dir) / STOP).exists()


def clear_stop(run_dir: PathLike) -> None:
    try:
        (Path(run_dir) / STOP).unlink()
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------ listing
@dataclass(frozen=True)
class TrainRunSummary:
    run_dir: Path
    name: str
    model: str
    dataset: str
    status: str
    step: int
    max_steps: int
    last_loss: Optional[float]
    has_adapter: bool


def summarize(run_dir: PathLike) -> TrainRunSummary:
    d = Path(run_dir)
    try:
        cfg = json.loads((d / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    state = read_state(d)
    losses = [e["loss"] for e in read_events(d) if e.get("event") == "step" and e.get("loss") is not None]
    return TrainRunSummary(d, d.name, str(cfg.get("model", "")), str(cfg.get("dataset", "")),
                           str(state.get("status", "created")), int(state.get("step", 0) or 0),
                           int(state.get("max_steps", 0) or 0), losses[-1] if losses else None,
                           (d / ADAPTER / "adapter_config.json").is_file())


def list_runs(folder: PathLike) -> List[TrainRunSummary]:
    """Run folders directly inside ``folder`` (those with a config.json), newest first."""
    root = Path(folder)
    if not root.is_dir():
        return []
    dirs = sorted((p for p in root.iterdir() if (p / CONFIG).is_file()),
                  key=lambda p: (p / CONFIG).stat().st_mtime, reverse=True)
    return [summarize(d) for d in dirs]
