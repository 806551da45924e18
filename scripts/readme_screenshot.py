"""Regenerate docs/screenshot.png: the sample scene, side by side, with region statistics.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/readme_screenshot.py
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SARLANG_SETTINGS_DIR", tempfile.mkdtemp())
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QRectF  # noqa: E402

from app import workers  # noqa: E402
from app.main import make_app  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from sarlang_core.resources import sample_scene_path  # noqa: E402


def pump(app, seconds):
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def main(out: str = str(ROOT / "docs" / "screenshot.png")) -> None:
    app = make_app()
    win = MainWindow()
    win.resize(1600, 940)
    win.show()
    win.open_path(str(sample_scene_path()))
    pump(app, 3)
    win.compare.set_view(QRectF(40, 280, 640, 560))
    win.compare.start_region(QRectF(90, 560, 70, 70))
    pump(app, 2)
    workers.wait_all(20000)
    pump(app, 1)
    win._hovered(400.5, 520.5)
    win.grab().save(out)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
