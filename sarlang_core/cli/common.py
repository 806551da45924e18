"""What every `sarlang-cli` command group shares: the usage-error parser, the terminal progress
bar, JSON-lines events for the GUI, and small argument parsers."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from typing import Dict, Iterator, List, Optional, Tuple

from ..errors import SarlangError


class UsageParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2; ``--debug`` accepted by the main
    parser and every sub-command (``sarlang-cli preprocess --debug ...``). Its default is
    SUPPRESS so a sub-parser never resets what the main parser set: read it with
    ``getattr(args, "debug", False)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="show tracebacks on errors")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: usage error: {message}\n")


class ProgressBar:
    """A tqdm bar per progress stage on a terminal; silent otherwise (pipes, CI).

    ``with ProgressBar(quiet) as progress:`` gives a progress callback, or None when silent."""

    def __init__(self, quiet: bool, unit: str = "block"):
        self.enabled = not quiet and sys.stderr.isatty()
        self.unit = unit
        self.bars: Dict[str, object] = {}

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, p) -> None:
        from tqdm import tqdm

        bar = self.bars.get(p.stage)
        if bar is None:
            bar = self.bars[p.stage] = tqdm(total=p.total if p.total > 0 else None, desc=p.stage, unit=self.unit,
                                            file=sys.stderr, leave=True)
        bar.n = p.done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]

    def __exit__(self, *exc) -> None:
        for bar in self.bars.values():
            bar.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def stop_on_signals(cancel) -> Iterator[List]:
    """SIGTERM and SIGINT cancel ``cancel`` (the work stops at its next check and removes its
    temporary files) instead of killing the process mid-write; a second SIGINT interrupts at
    once. Yields a list that receives (signal name, number) when a signal arrived."""
    got: List = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_signal(num, _frame):
        if got and num == signal.SIGINT:
            raise KeyboardInterrupt
        if not got:
            got.extend((signal.Signals(num).name, int(num)))
        cancel.cancel()

    saved = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


_NATIVE_NOISE = re.compile(rb"_tiff\w*Proc: [^\n]*\n")


@contextlib.contextmanager
def without_libtiff_noise() -> Iterator[None]:
    """libtiff prints ``_tiffWriteProc: No space left on device.`` straight to file descriptor 2
    on every failed write (GDAL reports the failure itself, and the CLI prints it as one line):
    route fd 2 through a pipe and drop those lines, passing everything else on at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        r, w = os.pipe()
    except OSError:
        yield
        return

    def forward() -> None:
        held = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            held = _NATIVE_NOISE.sub(b"", held + chunk)
            cut = held.rfind(b"_tiff")   # the start of a noise line not complete yet: keep it back
            if cut < 0 or b"\n" in held[cut:]:
                tail = next((k for k in range(4, 0, -1) if held.endswith(b"_tiff"[:k])), 0)
                cut = len(held) - tail
            out, held = held[:cut], held[cut:]
            if out:
                os.write(saved, out)   # progress bars (no newline) pass at once
        if held:
            os.write(saved, held)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    os.dup2(w, 2)
    os.close(w)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)   # closes the pipe's last write end: the thread drains and stops
        thread.join(timeout=5)
        os.close(r)
        os.close(saved)


def emit_json_line(obj: dict) -> None:
    """One JSON object per line on stdout, flushed at once (the GUI reads these through QProcess)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def parse_region(text: str) -> Tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise SarlangError(f"--region wants X,Y,W,H in scene pixels, got {text!r}") from None
    return x, y, w, h


def parse_band(text: Optional[str]):
    """A band given on the command line: an index (0-based) or a polarisation / band name."""
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def write_text(path: str, text: str) -> None:
    from ..atomic import write_text_atomic

    write_text_atomic(path, text)
