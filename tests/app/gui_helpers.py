"""Helpers shared by the GUI tests: waiting for renders, saving screenshots."""

from pathlib import Path

SHOTS = Path(__file__).resolve().parent / "screenshots"


def settle(qtbot, win, timeout=20000):
    """Wait until the views show a render for the current viewport and recipe."""
    from app import workers

    def done():
        workers.wait_all(100)
        assert win.renderer.last_proc is not None
        assert not win.renderer.pending
        assert workers.pool("io").activeThreadCount() == 0

    qtbot.waitUntil(done, timeout=timeout)
    qtbot.wait(50)


def show_styled(qtbot, make, size=None):
    """``make()`` built under the app's style, handed to qtbot (closed after the test), resized to
    ``size`` when given, shown and exposed."""
    from PySide6.QtWidgets import QApplication

    from app.main import apply_style

    apply_style(QApplication.instance())
    widget = make()
    qtbot.addWidget(widget)
    if size is not None:
        widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def screenshot(win, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    win.grab().save(str(path))
    return path


def open_and_wait(qtbot, win, path, timeout=30000) -> None:
    """Open ``path`` and wait until the window has installed it."""
    with qtbot.waitSignal(win.sceneOpened, timeout=timeout):
        win.open_path(str(path))


def open_fails(qtbot, win, path, timeout=30000) -> str:
    """Open ``path``, expect failure, return the message the user was shown."""
    with qtbot.waitSignal(win.openFailed, timeout=timeout) as blocker:
        win.open_path(str(path))
    return blocker.args[1]


def write_coco_chips(folder, n: int = 4, extra_annotations=()):
    """A SARDet-100K-style COCO file over ``n`` speckled 128x96 chips, one ship box each:
    (annotations path, images folder)."""
    import json

    import numpy as np
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    recs, anns = [], []
    for i in range(n):
        name = f"chip_{i}.png"
        Image.fromarray((rng.gamma(1.0, 60.0, (96, 128)).clip(0, 255)).astype(np.uint8)).save(images / name)
        recs.append({"id": i + 1, "file_name": name, "width": 128, "height": 96})
        anns.append({"id": 10 + i, "image_id": i + 1, "category_id": 1, "bbox": [20, 30, 24, 12]})
    ann = folder / "instances.json"
    ann.write_text(json.dumps({"images": recs, "annotations": anns + list(extra_annotations),
                               "categories": [{"id": 1, "name": "ship"}]}))
    return ann, images


def new_chips_project(folder, quality_checks: bool = False):
    """A dataset project over write_coco_chips' chips with template questions (and the quality
    checks' flags when asked): its path."""
    from sarlang_core.services import datasets as svc

    ann, images = write_coco_chips(folder)
    store = folder / "project.db"
    svc.import_into(store, "coco", ann, images_dir=images)
    svc.generate_templates(store, seed=0)
    if quality_checks:
        svc.run_quality_checks(store)
    return store
