"""How long a generated token takes to reach the chat panel (GUI offscreen, tiny local model).

The worker timestamps each piece when the backend yields it; the panel slot measures when it
shows it. Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_chat_latency.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SARLANG_SETTINGS_DIR", tempfile.mkdtemp())
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402


def main() -> None:
    from app.main import make_app
    from app.main_window import MainWindow
    from sarlang_core.resources import sample_scene_path
    from sarlang_core.vlm.local import LocalBackend
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    print(machine())
    app = make_app()
    win = MainWindow()
    win.resize(1600, 1000)
    win.show()

    def pump_until(cond, timeout=60.0):
        end = time.time() + timeout
        while not cond() and time.time() < end:
            app.processEvents()
            time.sleep(0.001)

    win.open_path(str(sample_scene_path()))
    pump_until(lambda: win.renderer.last_proc is not None)
    model = build_tiny_qwen2_5_vl(Path(tempfile.mkdtemp()) / "tiny")
    loaded = []
    win.chat.controller.loaded.connect(loaded.append)
    win.chat.load_backend(LocalBackend(model))
    pump_until(lambda: bool(loaded))
    samples = []
    done = []
    win.chat.controller.finished.connect(done.append)
    for _ in range(5):
        win.chat_panel.max_tokens.setValue(64)
        win.chat_panel.input.setText("Describe the content of this image in one sentence.")
        n = len(done)
        win.chat_panel.ask_button.click()
        pump_until(lambda n=n: len(done) > n)
        samples += win.chat._t_piece
    samples.sort()
    print(f"token -> panel latency over {len(samples)} pieces: median {statistics.median(samples):.2f} ms, "
          f"p95 {samples[int(0.95 * (len(samples) - 1))]:.2f} ms, max {samples[-1]:.2f} ms   target <= 50 ms")
    win.close()
    app.processEvents()


if __name__ == "__main__":
    main()
