"""The dataset review window, keyboard first: accept, reject, edit, undo, bulk, filters."""

import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from gui_helpers import screenshot

from sarlang_core.datasets.store import Store
from sarlang_core.services import datasets as svc


@pytest.fixture
def project(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    recs, anns = [], []
    for i in range(4):
        name = f"chip_{i}.png"
        Image.fromarray((rng.gamma(1.0, 60.0, (96, 128)).clip(0, 255)).astype(np.uint8)).save(images / name)
        recs.append({"id": i + 1, "file_name": name, "width": 128, "height": 96})
        anns.append({"id": 10 + i, "image_id": i + 1, "category_id": 1, "bbox": [20, 30, 24, 12]})
    ann = tmp_path / "instances.json"
    ann.write_text(json.dumps({"images": recs, "annotations": anns, "categories": [{"id": 1, "name": "ship"}]}))
    store = tmp_path / "project.db"
    svc.import_into(store, "coco", ann, images_dir=images)
    svc.generate_templates(store, seed=0)
    svc.run_quality_checks(store)
    return store


@pytest.fixture
def review(qtbot, project):
    from app.review_window import ReviewWindow

    win = ReviewWindow(str(project), reviewer="tester")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win, k, mod)


def test_keyboard_review_flow(qtbot, review, project):
    first = review.queue.current()
    assert first is not None and review.question.toPlainText() == first.question
    qtbot.waitUntil(lambda: review.sar_view.image.image is not None, timeout=10000)
    assert len(review.overlay.items) >= 1                      # the image's boxes are drawn
    key(qtbot, review, Qt.Key.Key_A)
    second = review.queue.current()
    assert second.id != first.id
    key(qtbot, review, Qt.Key.Key_X)
    key(qtbot, review, Qt.Key.Key_E)
    review.answer.setPlainText("edited answer")
    key(qtbot, review, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    with Store.open(project) as store:
        assert store.item(first.id).status == "accepted"
        assert store.item(second.id).status == "rejected"
        edited = [h for h in store.history(review.queue.current().id if False else second.id + 1)]
        assert store.item(second.id + 1).answer == "edited answer" and store.item(second.id + 1).status == "edited"
        assert edited and edited[-1]["reviewer"] == "tester"
    key(qtbot, review, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with Store.open(project) as store:
        assert store.item(second.id + 1).status == "pending"   # undo reverted the edit
    stats = review.stats_view.last
    assert stats["items"] == 36 and stats["boxes_per_category"] == {"ship": 4}
    assert "36 items" in review.stats_view.summary.text()
    screenshot(review, "review_window")
    assert "reviewed 2 of" in review.progress.text()


def test_filters_and_bulk(qtbot, review, project):
    review.type_filter.setCurrentIndex(review.type_filter.findData("counting"))
    assert all(review.store.item(i).type == "counting" for i in list(review.queue._ids))
    n = review.bulk_apply("accepted")
    assert n == len([1 for _ in range(n)]) and n > 0
    review.status_filter.setCurrentIndex(review.status_filter.findData("accepted"))
    assert review.queue.total == n
    key(qtbot, review, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with Store.open(project) as store:
        assert store.count_items(status="accepted") == 0       # one undo reverts the whole bulk step
