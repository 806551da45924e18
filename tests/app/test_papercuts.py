"""The GUI papercuts a new user met (issue 9), each asserted on the real widgets, with screenshots
at 1366 x 768 and 1920 x 1080 under tests/app/screenshots/."""

from types import SimpleNamespace

import numpy as np
import pyqtgraph as pg
import pytest
import rasterio
from gui_helpers import new_chips_project, open_and_wait, screenshot, settle
from PIL import Image
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication, QDockWidget
from test_benchmark_samples import caption_run  # noqa: F401  (a fixture: a real scored caption run)
from test_chat import chat_window  # noqa: F401  (a fixture: the sample scene and a model at a local server)

from app.main import sample_scene_path
from sarlang_core.datasets.records import Item
from sarlang_core.datasets.store import Store
from sarlang_core.preprocess.pipeline import Pipeline
from sarlang_core.services import datasets as svc

SIZES = ((1366, 768), (1920, 1080))
LAPTOP_HEIGHT = 768 - 40          # a 768-px screen less a task bar / title bar


def shots(qtbot, win, name: str) -> None:
    """Screenshots of ``win`` at both sizes (the window ends at the last one)."""
    for w, h in SIZES:
        win.resize(w, h)
        qtbot.wait(150)
        QApplication.processEvents()
        screenshot(win, f"papercut_{name}_{w}x{h}")


def open_sample(qtbot, win):
    open_and_wait(qtbot, win, sample_scene_path())
    settle(qtbot, win)


def rois(view):
    return [i for i in view.vb.addedItems if isinstance(i, pg.RectROI)]


# -- main window size ------------------------------------------------------------------------------
def test_main_window_fits_a_1366x768_screen(qtbot, window):
    hint = window.minimumSizeHint()
    assert hint.height() <= LAPTOP_HEIGHT and hint.width() <= 1366
    # the left panels scroll instead of adding up to the window's minimum height
    pipeline_dock = next(d for d in window.findChildren(QDockWidget) if d.windowTitle() == "Pipeline")
    assert pipeline_dock.minimumSizeHint().height() < window.pipeline_panel.minimumSizeHint().height()
    open_sample(qtbot, window)
    window.resize(1366, LAPTOP_HEIGHT)
    qtbot.waitUntil(lambda: window.height() == LAPTOP_HEIGHT)
    qtbot.wait(100)
    for view in (window.compare.raw_view, window.compare.proc_view):
        assert view.width() >= 200 and view.height() >= 400
    shots(qtbot, window, "main_window")
    # where there is room (1080 px), neither left panel needs its scroll bar
    from PySide6.QtWidgets import QScrollArea
    for panel in (window.pipeline_panel, window.stats_panel):
        area = next(a for a in window.findChildren(QScrollArea) if a.widget() is panel)
        assert not area.verticalScrollBar().isVisible(), panel.objectName()


LAPTOP_RUN = r"""
import json, sys
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDockWidget
app = QApplication([])
from app.main import apply_style
from app.main_window import MainWindow
apply_style(app)

def settle():
    for _ in range(20):
        app.processEvents()

first = MainWindow()
first.show()
first.resize(3840, 2160)                 # a 4K session: the window and a very wide chat dock
settle()
chat = next(d for d in first.findChildren(QDockWidget) if d.windowTitle() == "Chat")
first.resizeDocks([chat], [2500], Qt.Orientation.Horizontal)
settle()
first.save_settings()
first.close()

win = MainWindow()                        # restored on the 1366 x 768 laptop
win.show()
settle()
frame, avail = win.frameGeometry(), win.screen().availableGeometry()
print(json.dumps({"min_h": win.minimumSizeHint().height(), "min_w": win.minimumSizeHint().width(),
                  "frame": [frame.x(), frame.y(), frame.width(), frame.height()],
                  "avail": [avail.x(), avail.y(), avail.width(), avail.height()],
                  "views": [[v.width(), v.height()] for v in (win.compare.raw_view, win.compare.proc_view)]}))
win.close()
"""


def test_a_4k_geometry_restored_on_a_1366x768_laptop_keeps_the_views_usable(tmp_path):
    """In a process of its own, with a 1366 x 768 offscreen screen: the window fits it, and the
    images are not squeezed by docks saved on a bigger screen (they were 56 px wide)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    screens = tmp_path / "screens.json"
    screens.write_text(json.dumps({"screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1366, "height": 768,
                                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screens}",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", LAPTOP_RUN], env=env, cwd=root, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["avail"] == [0, 0, 1366, 768]
    assert r["min_h"] <= 768 and r["min_w"] <= 1366
    x, y, w, h = r["frame"]
    assert x >= 0 and y >= 0 and x + w <= 1366 and y + h <= 768, r
    for vw, vh in r["views"]:
        assert vw >= 300 and vh >= 450, r


# -- status bar values -----------------------------------------------------------------------------
def _uint8_scene(path):
    data = np.full((1, 64, 64), 168, dtype=np.uint8)
    data[0, :, :8] = 40
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8") as dst:
        dst.write(data)
    return path


def test_the_raw_value_of_an_8bit_image_is_the_stored_value(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, _uint8_scene(tmp_path / "chip.tif"))
    settle(qtbot, window)
    window._hovered(20.5, 30.5)
    text = window.cursor_label.text()
    assert "raw 168 " in text + " "                     # the stored pixel, not 168²
    assert "intensity 2.822e+04 (44.51 dB)" in text     # the derived intensity, separately
    assert "raw 2.822e+04" not in text
    window._hovered(2.5, 30.5)
    assert "raw 40 " in window.cursor_label.text() + " "
    window.statusBar().clearMessage()      # "Opened ..." would hide the cursor line in the screenshots
    window._hovered(20.5, 30.5)
    shots(qtbot, window, "status_bar_raw")


@pytest.mark.parametrize("pipeline, quantity, dtype, value, expected", [
    (Pipeline(), "amplitude", "uint8", 10 * np.log10(168.0 ** 2), ["raw 168", "intensity 2.822e+04 (44.51 dB)"]),
    (Pipeline(), "intensity", "float32", -10.0, ["raw 0.1 intensity (-10.00 dB)"]),
    (Pipeline(db=False), "amplitude", "uint16", 900.0, ["raw 30", "intensity 900"]),
    (Pipeline(db=False, domain="amplitude"), "amplitude", "uint8", 168.0, ["raw 168", "intensity 2.822e+04"]),
    (Pipeline(db=False, domain="amplitude"), "intensity", "float32", 0.5, ["raw 0.25 intensity"]),
    (Pipeline(), "intensity", "complex64", 20.0, ["|z| 10", "intensity 100 (20.00 dB)"]),
    (Pipeline(), "amplitude", "uint8", -50.0, ["raw 0", "intensity 0 (≤ -50 dB floor)"]),
])
def test_raw_and_intensity_for_each_kind_of_band(pipeline, quantity, dtype, value, expected):
    from app.viewer.cursor_readout import raw_parts

    scene = SimpleNamespace(dtype=dtype, is_complex=dtype.startswith("complex"))
    assert raw_parts(float(np.float32(value)), pipeline, quantity, scene, 0) == expected


# -- chat ------------------------------------------------------------------------------------------
def test_the_ask_about_box_shows_its_whole_choice(qtbot, window):
    window.resize(1366, LAPTOP_HEIGHT)
    qtbot.wait(100)
    box = window.chat_panel.source
    longest = max(box.fontMetrics().horizontalAdvance(box.itemText(i)) for i in range(box.count()))
    assert box.width() >= box.sizeHint().width() and box.width() >= longest + 20
    for b in window.chat_panel.action_buttons.values():
        assert b.width() >= b.sizeHint().width() - 2, b.text()


def test_a_refused_question_stays_in_the_input(qtbot, window):
    open_sample(qtbot, window)
    panel = window.chat_panel
    panel.input.setText("Is there a ship?")
    panel.ask_button.click()                                # no model loaded: refused
    assert "Load a model" in panel.model_status.text()
    assert panel.input.text() == "Is there a ship?"


def test_an_asked_question_leaves_the_input(qtbot, chat_window):  # noqa: F811
    win, _ep = chat_window
    panel = win.chat_panel
    panel.input.setText("How many ships are there in the image?")
    with qtbot.waitSignal(win.chat.controller.finished, timeout=30000):
        panel.ask_button.click()
    assert panel.input.text() == ""
    assert "How many ships are there in the image?" in panel.view.toPlainText()
    shots(qtbot, win, "chat")


# -- benchmarks ------------------------------------------------------------------------------------
def test_percent_charts_read_0_to_100_whatever_the_scores(qtbot):
    from app.benchmarks.charts import BarChart

    chart = BarChart("VQA accuracy")
    qtbot.addWidget(chart)
    chart.show_bars(["Accuracy"], [("weak run", [0.004])], "metric", "accuracy (%)")
    (_x0, _x1), (y0, y1) = chart.getPlotItem().viewRange()
    assert y0 == 0 and 100 <= y1 <= 115                      # a 0.4 % run on a 0-100 % axis, not 0-1
    ticks = chart.getPlotItem().getAxis("left")._tickLevels[0]
    assert [v for v, _ in ticks] == [0, 20, 40, 60, 80, 100]
    chart.show_bars(["all"], [("run", [2.5])], "caption kind", "CIDEr (×100)", percent=False)
    assert chart.getPlotItem().viewRange()[1][1] >= 250      # CIDEr ×100 passes 100: its own scale


def test_registered_models_are_the_default_source(qtbot, bench):
    from app.benchmarks.run_form import ENDPOINT

    form = bench.form
    form.set_models([("Tiny SAR-VLM (3B)", "tiny"), ("Other", "other")])
    assert form.model.currentData() == "registry:tiny"
    form.model.setCurrentIndex(form.model.findData(ENDPOINT))   # a choice the user made is kept
    form.set_models([("Tiny SAR-VLM (3B)", "tiny")])
    assert form.model.currentData() == ENDPOINT


def test_the_types_list_is_not_clipped_by_the_queue(qtbot, bench):
    form = bench.form
    for h in (900, 1080):
        bench.resize(1500, h)
        qtbot.wait(100)
        top = form.types_box.mapTo(form.viewport(), QPointF(0, 0)).y()
        bottom = top + form.types_box.height()
        assert 0 <= top and bottom <= form.viewport().height(), (h, top, bottom, form.viewport().height())
        assert all(cb.isVisible() and cb.height() >= cb.sizeHint().height() - 2 for cb in form.type_checks.values())
    shots(qtbot, bench, "benchmark_form")


def test_the_sample_id_column_fits_the_ids(qtbot, bench, caption_run):  # noqa: F811
    with qtbot.waitSignal(bench.runsLoaded, timeout=10000):
        bench.refresh()
    bench.runs.select_runs([str(caption_run)])
    browser = bench.samples
    bench.tabs.setCurrentWidget(browser)
    qtbot.waitUntil(lambda: browser.model.rowCount() == 10, timeout=10000)
    col = browser.model.column_of("ID")
    ids = [browser.model.row_at(r)["id"] for r in range(browser.model.rowCount())]
    longest = max(browser.table.fontMetrics().horizontalAdvance(i) for i in ids)
    assert browser.table.columnWidth(col) >= longest + 8
    shots(qtbot, bench, "benchmark_samples")
    bench.tabs.setCurrentWidget(bench.charts)
    shots(qtbot, bench, "benchmark_charts")


# -- review window ---------------------------------------------------------------------------------
@pytest.fixture
def chips_project(tmp_path):
    return new_chips_project(tmp_path)


def test_review_has_buttons_for_the_current_item(qtbot, open_review, chips_project):
    review = open_review(chips_project)
    bar = review.actions_bar
    texts = {name: b.text() for name, b in bar.buttons.items()}
    assert "Accept" in texts["accept"] and "(A)" in texts["accept"]
    assert "Reject" in texts["reject"] and "(X)" in texts["reject"]
    assert "Edit" in texts["edit"] and "(E)" in texts["edit"]
    for name in ("accept", "reject", "edit", "previous", "next"):
        assert bar.buttons[name].isVisible() and bar.buttons[name].isEnabled(), name
    assert not bar.buttons["save"].isVisible()

    first = review.queue.current()
    bar.buttons["accept"].click()
    second = review.queue.current()
    assert second.id != first.id
    bar.buttons["reject"].click()
    third = review.queue.current()
    bar.buttons["edit"].click()
    assert review.editing and bar.buttons["save"].isVisible() and not bar.buttons["accept"].isVisible()
    review.answer.setPlainText("edited by button")
    bar.buttons["save"].click()
    assert not review.editing and bar.buttons["accept"].isVisible()
    with Store.open(chips_project) as store:
        assert store.item(first.id).status == "accepted"
        assert store.item(second.id).status == "rejected"
        assert store.item(third.id).answer == "edited by button"
    shots(qtbot, review, "review_buttons")


def test_the_optical_pane_takes_no_room_without_optical_pairs(qtbot, open_review, chips_project):
    review = open_review(chips_project)
    qtbot.waitUntil(lambda: review.sar_view.image.image is not None, timeout=10000)
    assert not review.optical.isVisible()
    split = review.optical.parentWidget()
    assert split.sizes()[1] == 0
    assert review.sar_view.width() >= 0.5 * (split.width() - split.handleWidth() * 2)


def test_the_optical_pane_shows_for_pairs(qtbot, open_review, tmp_path):
    sar, opt = tmp_path / "sar", tmp_path / "optical"
    sar.mkdir()
    opt.mkdir()
    Image.new("L", (48, 32), 90).save(sar / "scene_0.png")
    Image.new("RGB", (48, 32), (30, 120, 90)).save(opt / "scene_0.png")
    store = tmp_path / "pairs.db"
    svc.import_into(store, "pairs", sar, optical_dir=opt)
    with Store.open(store) as s:
        image_id = next(s.images()).id
        s.add_items([Item(image_id, "caption_concise", "Describe.", "a field", "imported")])
    review = open_review(store)
    qtbot.waitUntil(lambda: review.optical.isVisible(), timeout=5000)
    assert review.optical.width() >= 200 and review.optical.pixmap() is not None


# -- region statistics -----------------------------------------------------------------------------
def test_the_region_shows_on_both_views_and_once_in_swipe(qtbot, window):
    open_sample(qtbot, window)
    compare = window.compare
    compare.start_region(QRectF(40, 420, 60, 60))
    qtbot.waitUntil(lambda: window.stats_panel.last is not None, timeout=10000)
    assert len(rois(compare.raw_view)) == 1 and len(rois(compare.proc_view)) == 1
    assert compare.raw_view.region_rect() == compare.proc_view.region_rect() == QRectF(40, 420, 60, 60)
    # dragged on the raw view, the processed one follows as it moves, and the statistics follow the drop
    compare.raw_view.region.setPos(QPointF(100, 150), finish=False)
    assert compare.proc_view.region_rect() == QRectF(100, 150, 60, 60)
    compare.raw_view.region.setPos(QPointF(200, 300))
    assert compare.proc_view.region_rect() == QRectF(200, 300, 60, 60)
    assert compare.region_rect() == QRectF(200, 300, 60, 60)
    qtbot.waitUntil(lambda: "at (200, 300)" in window.stats_panel.summary.text(), timeout=10000)
    shots(qtbot, window, "region_side_by_side")

    window.set_compare_mode("swipe")
    settle(qtbot, window)
    assert len(rois(compare.swipe_view)) == 1
    assert not rois(compare.raw_view) and not rois(compare.proc_view)
    assert compare.region_rect() == QRectF(200, 300, 60, 60)
    shots(qtbot, window, "region_swipe")

    compare.swipe_view.clear_region()
    window.set_compare_mode("side")
    assert not rois(compare.raw_view) and not rois(compare.proc_view)
    compare.start_region(QRectF(10, 10, 30, 30))
    compare.proc_view.clear_region()                            # removing one removes both
    assert not rois(compare.raw_view)
